"""The default EE builds to the same image ID twice from clean, the one the recipes record.

Each build runs `scripts/build-images --store DIR --ee-only` in a private podman store (the
engines' images are untouched) that holds only the base image, loaded from podman's store: the
EE is then built with no cache from the locked wheels. Slow (about a minute per build), in CI;
the whole `--verify` (base and network-ee too) is the opt-in test_image_verify.py."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from containerrunner.cli import images
from tests.conftest import EngineProbe, require_engine
from tests.integration.support import (
    built_from_committed_recipe,
    recorded_image_ids,
    short_temp_dir,
)

pytestmark = [pytest.mark.integration, pytest.mark.podman]

BASE = "localhost/containerrunner-base:bookworm"
EE = "localhost/containerrunner-ee:latest"


def _store(path: Path, *args: str) -> list[str]:
    return ["podman", "--root", str(path / "root"), "--runroot", str(path / "run"), *args]


def _build_in(store: Path, base_archive: Path) -> tuple[str, str]:
    """The EE's ID built in a fresh store holding only the base; and the build's log."""
    subprocess.run(_store(store, "load", "-q", "-i", str(base_archive)), check=True, timeout=300)
    proc = subprocess.run(
        ["bash", str(images.BUILD_SCRIPT), "--store", str(store), "--ee-only"],
        env=dict(os.environ, XDG_STATE_HOME=str(store / "state")),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    image_id = subprocess.run(
        _store(store, "image", "inspect", "--format", "{{.Id}}", EE),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return image_id, proc.stderr


def test_the_default_ee_builds_to_the_recorded_id_twice(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe], tmp_path: Path
) -> None:
    podman = require_engine(request, engine_probes, "podman")
    expected = recorded_image_ids().get(EE)
    if expected is None:
        pytest.skip(f"no ID recorded for {EE} on {platform.machine()}")
    if not built_from_committed_recipe(podman, BASE):
        pytest.skip(f"{BASE} was built from other inputs than the committed recipe")
    archive = tmp_path / "base.tar"
    subprocess.run(podman.command("save", "-q", "-o", str(archive), BASE), check=True, timeout=300)
    # podman takes a runroot of at most 50 characters: the stores go in a short dir
    with short_temp_dir("cr-ee-") as short:
        stores = [short / "1", short / "2"]
        try:
            first, log = _build_in(stores[0], archive)
            assert f"base: {BASE} is up to date" in log  # only the EE was built
            second, _ = _build_in(stores[1], archive)
        finally:
            for store in stores:
                if (store / "root").is_dir():
                    subprocess.run(
                        _store(store, "rmi", "-a", "-f"), capture_output=True, check=False
                    )
    assert first == second, f"two clean builds of {EE} differ: {first[:12]} vs {second[:12]}"
    assert first == expected, (
        f"{EE} built as {first[:12]}, recipes/expected-ids records {expected[:12]}"
    )
