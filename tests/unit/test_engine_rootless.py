"""Whether podman is rootless, answered without `podman info` where that is certain."""

from __future__ import annotations

from pathlib import Path

import pytest

from containerrunner.isolation import engine


@pytest.fixture
def plain_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Root in the initial user namespace, local podman, no remote setting anywhere."""
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    conf = tmp_path / "containers.conf"
    conf.write_text('[engine]\nruntime = "runc"\n')
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    monkeypatch.setattr(engine, "_SYSTEM_CONTAINERS_CONFS", ())
    real_open = open

    def fake_open(path: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if path == "/proc/self/uid_map":
            return real_open(tmp_path / "uid_map", *args, **kwargs)  # type: ignore[call-overload]
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    (tmp_path / "uid_map").write_text("         0          0 4294967295\n")
    monkeypatch.setattr("builtins.open", fake_open)
    return tmp_path


def test_root_in_the_initial_namespace_is_rootful_without_asking(plain_root: Path) -> None:
    assert engine._plainly_rootful()


def test_a_non_root_caller_asks_podman(plain_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)
    assert not engine._plainly_rootful()


def test_root_in_a_user_namespace_asks_podman(plain_root: Path) -> None:
    (plain_root / "uid_map").write_text("         0       1000          1\n")
    assert not engine._plainly_rootful()


def test_a_remote_podman_asks_podman(plain_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "ssh://root@127.0.0.1/run/podman/podman.sock")
    assert not engine._plainly_rootful()
    monkeypatch.delenv("CONTAINER_HOST")
    (plain_root / "containers.conf").write_text("[engine]\n  remote = true\n")
    assert not engine._plainly_rootful()
