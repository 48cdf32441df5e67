"""The reaper and cleanup see only the caller's containers (owner uid label); a fake engine."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from containerrunner.isolation import engine as engine_mod
from containerrunner.isolation.reaper import list_ours, reap_orphans, remove_if_owned
from tests.unit.test_process_support import fake_engine, fake_engine_with_ps

HOST = socket.gethostname()
DEAD_PID = 2**22 + 17  # above the usual pid_max: no such process


def container(name: str, pid: int, uid: int | None) -> dict[str, Any]:
    """A container's inspect document as `container inspect` prints it (docker's shape)."""
    labels = {
        "containerrunner": "1",
        "containerrunner.ident": name,
        "containerrunner.owner-pid": str(pid),
        "containerrunner.owner-host": HOST,
    }
    if uid is not None:
        labels["containerrunner.owner-uid"] = str(uid)
    return {
        "Id": f"id-{name}",
        "Name": f"/{name}",
        "Config": {"Labels": labels},
        "State": {"Status": "exited"},
    }


def removed(log: Path) -> list[str]:
    return [line.split()[-1] for line in log.read_text().splitlines() if line.startswith("rm ")]


def test_reaper_removes_only_the_callers_orphans(tmp_path: Path) -> None:
    me, other = os.getuid(), os.getuid() + 4242
    found = [container("mine", DEAD_PID, me), container("theirs", DEAD_PID, other)]
    engine, log = fake_engine_with_ps(tmp_path, found)
    assert [c["name"] for c in list_ours(engine)] == ["mine"]
    assert [c["name"] for c in list_ours(engine, uid=other)] == ["theirs"]
    assert reap_orphans(engine) == ["mine"]
    assert removed(log) == ["mine"]


def test_a_container_without_owner_uid_counts_as_roots(tmp_path: Path) -> None:
    engine, _log = fake_engine_with_ps(tmp_path, [container("old", DEAD_PID, None)])
    expected = ["old"] if os.getuid() == 0 else []
    assert reap_orphans(engine) == expected
    assert [c["name"] for c in list_ours(engine, uid=4242)] == []


def test_remove_if_owned_checks_the_uid(tmp_path: Path) -> None:
    other = os.getuid() + 4242
    engine, log = fake_engine_with_ps(tmp_path, [container("job", 77, other)])
    assert not remove_if_owned(engine, "job", 77)
    assert removed(log) == []


def test_the_list_is_one_ps_by_label_then_one_inspect(tmp_path: Path) -> None:
    found = [container("a", DEAD_PID, 0), container("b", DEAD_PID, 0)]
    engine, log = fake_engine_with_ps(tmp_path, found)
    list_ours(engine)
    assert log.read_text().splitlines() == [
        "ps -a --no-trunc --filter label=containerrunner --format {{.ID}}",
        "container inspect id-a id-b",
    ]


def test_an_empty_list_is_one_ps(tmp_path: Path) -> None:
    engine, log = fake_engine_with_ps(tmp_path, [])
    assert list_ours(engine) == []
    assert len(log.read_text().splitlines()) == 1


@pytest.mark.parametrize(("answer", "expected"), [("true", True), ("false", False)])
def test_rootless_comes_from_podman_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, expected: bool
) -> None:
    engine, log = fake_engine(tmp_path, "podman")
    Path(engine.executable).write_text(f'#!/bin/sh\necho "$*" >> "{log}"\necho {answer}\n')
    monkeypatch.setattr(engine_mod, "_ROOTLESS", {})
    monkeypatch.setattr(engine_mod, "_plainly_rootful", lambda: False)  # podman is asked
    assert engine_mod.make_engine("podman", engine.executable).rootless is expected
    assert engine_mod.make_engine("podman", engine.executable).rootless is expected
    # Asked once per process, with the engine's own answer.
    assert log.read_text().splitlines() == ["info --format {{.Host.Security.Rootless}}"]


def test_rootless_falls_back_to_the_euid_when_podman_info_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _log = fake_engine(tmp_path, "podman")
    Path(engine.executable).write_text("#!/bin/sh\nexit 125\n")
    monkeypatch.setattr(engine_mod, "_ROOTLESS", {})
    monkeypatch.setattr(engine_mod, "_plainly_rootful", lambda: False)  # podman is asked
    assert engine_mod.make_engine("podman", engine.executable).rootless is (os.geteuid() != 0)
    assert engine_mod._ROOTLESS == {}  # a failure is not remembered


def test_detect_engine_asks_version_once_and_info_alongside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from containerrunner.isolation.images import engine_version

    log = tmp_path / "calls"
    podman = tmp_path / "podman"
    podman.write_text(
        f'#!/bin/sh\necho "$*" >> "{log}"\n'
        'case "$1" in version) echo 9.8.7;; info) echo false;; *) exit 3;; esac\n'
    )
    podman.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(engine_mod, "_ROOTLESS", {})
    monkeypatch.setattr(engine_mod, "_plainly_rootful", lambda: False)  # podman is asked
    monkeypatch.setattr(engine_mod, "_ANSWERED", set())
    monkeypatch.setattr(engine_mod, "_VERSIONS", {})
    engine = engine_mod.detect_engine("podman")
    assert engine_mod.detect_engine("podman") == engine
    assert engine_version(engine) == "9.8.7"  # the probe's answer: no `--version`
    assert not engine.rootless
    assert sorted(log.read_text().splitlines()) == [
        "info --format {{.Host.Security.Rootless}}",
        "version --format {{.Client.Version}}",
    ]
