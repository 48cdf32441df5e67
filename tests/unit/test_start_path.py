"""A job's start path asks the engine as little as it can: no `version` probe before the
image query for an engine named explicitly, and the provenance's `--version` alongside it.

The engine is a shell script that logs its arguments (no container runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containerrunner.errors import EngineError
from containerrunner.isolation import engine as engine_mod
from containerrunner.isolation import images as images_mod

IMAGE = "localhost/probe:latest"
INSPECT = '[{"Id": "sha256:' + "ab" * 32 + '", "Labels": {}}]'


@pytest.fixture
def fake_podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_engine_facts: None) -> Path:
    """A `podman` on PATH that answers version, --version and image inspect; returns its log."""
    log = tmp_path / "calls"
    podman = tmp_path / "podman"
    podman.write_text(
        f'#!/bin/sh\necho "$*" >> "{log}"\n'
        'case "$1" in\n'
        "  version) echo 9.8.7;;\n"
        "  --version) echo podman version 9.8.7;;\n"
        f"  image) echo '{INSPECT}';;\n"
        "  *) exit 3;;\n"
        "esac\n"
    )
    podman.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("CONTAINERRUNNER_ENGINE_API", "cli")
    return log


def _calls(log: Path) -> list[str]:
    return sorted(log.read_text().splitlines()) if log.exists() else []


def test_start_path_is_one_image_query_and_the_version_alongside(fake_podman: Path) -> None:
    engine = engine_mod.detect_engine("podman", probe=False)
    assert _calls(fake_podman) == []  # no `version` probe
    images_mod.prefetch_engine_version(engine)
    image_id = images_mod.ensure_image(engine, IMAGE, "missing")
    assert image_id == "sha256:" + "ab" * 32
    assert images_mod.engine_version(engine) == "9.8.7"
    assert images_mod.engine_version(engine) == "9.8.7"  # asked once per process
    assert _calls(fake_podman) == ["--version", f"image inspect {IMAGE}"]


def test_version_without_prefetch_is_asked_once(fake_podman: Path) -> None:
    engine = engine_mod.detect_engine("podman", probe=False)
    assert images_mod.engine_version(engine) == "9.8.7"
    assert images_mod.engine_version(engine) == "9.8.7"
    assert _calls(fake_podman) == ["--version"]


def test_auto_still_probes(fake_podman: Path) -> None:
    engine_mod.detect_engine("auto", probe=False)
    assert _calls(fake_podman) == ["version --format {{.Client.Version}}"]


def test_an_engine_that_does_not_answer_is_named_by_the_image_query(
    fake_podman: Path, tmp_path: Path
) -> None:
    (tmp_path / "podman").write_text(f'#!/bin/sh\necho "$*" >> "{fake_podman}"\nexit 125\n')
    engine = engine_mod.detect_engine("podman", probe=False)
    with pytest.raises(EngineError, match=r"podman does not answer at .*`.*podman version` fails"):
        images_mod.ensure_image(engine, IMAGE, "missing")
    # the failed prefetch is not remembered: engine_version asks again and says why
    images_mod.prefetch_engine_version(engine)
    with pytest.raises(Exception, match="--version"):
        images_mod.engine_version(engine)
