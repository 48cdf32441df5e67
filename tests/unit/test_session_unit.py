"""Warm sessions without an engine: the exec command line (golden, per engine), the mount
check and the options a call in a session cannot have."""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.cli.sessioncmds import user_mounts
from containerrunner.errors import ConfigurationError
from containerrunner.isolation.argv import PIDFILE_WRAPPER, build_exec_argv
from containerrunner.isolation.engine import Engine
from containerrunner.isolation.types import ExecSpec, Mount
from containerrunner.session import _covers
from containerrunner.session_record import (
    SESSION_FILE,
    SessionRecord,
    find_session,
    live_sessions,
    read_record,
    write_record,
)
from containerrunner.tempdirs import Owner, fresh_path, make_dir

PODMAN = Engine(name="podman", executable="/usr/bin/podman")
DOCKER = Engine(name="docker", executable="/usr/bin/docker")


@pytest.mark.parametrize("engine", [PODMAN, DOCKER])
def test_exec_argv(engine: Engine) -> None:
    spec = ExecSpec(
        engine=engine, container="containerrunner_session-x", workdir="/srv/p",
        pidfile="/tmp/run/exec.pid", env_names=("A", "SECRET"), tty=True, interactive=True,
    )  # fmt: skip
    assert build_exec_argv(spec, ["ansible", "--version"]) == [
        engine.executable, "exec", "-i", "-t", "-w", "/srv/p", "-e", "A", "-e", "SECRET",
        "containerrunner_session-x", "sh", "-c", PIDFILE_WRAPPER, "/tmp/run/exec.pid",
        "ansible", "--version",
    ]  # fmt: skip


def test_exec_argv_refuses_a_value_in_an_env_name() -> None:
    spec = ExecSpec(engine=PODMAN, container="c", workdir="/", pidfile="/p", env_names=("A=1",))
    with pytest.raises(ConfigurationError, match="A=1"):
        build_exec_argv(spec, ["true"])


@pytest.mark.parametrize(
    ("have", "need", "covered"),
    [
        (Mount.same_path("/srv"), Mount.same_path("/srv/p/inv"), True),
        (Mount.same_path("/srv"), Mount.same_path("/srv"), True),
        (Mount.same_path("/srv"), Mount.same_path("/srvx"), False),
        (Mount.same_path("/srv/p"), Mount.same_path("/srv"), False),
        (Mount.same_path("/srv", read_only=True), Mount.same_path("/srv/a"), False),
        (Mount.same_path("/srv", read_only=True), Mount.same_path("/srv/k", secret=True), True),
        (Mount("/srv", "/data"), Mount.same_path("/srv/a"), False),
        (Mount("/srv", "/data"), Mount("/srv/a", "/data/a"), True),
    ],
)
def test_a_session_mount_covers_what_is_under_it_at_the_same_place(
    have: Mount, need: Mount, covered: bool
) -> None:
    assert _covers(have, need) is covered


def test_a_session_not_started_is_refused(tmp_path: Path) -> None:
    session = containerrunner.Session(mounts=[str(tmp_path)])
    assert not session.running
    with pytest.raises(ConfigurationError, match="not running"):
        containerrunner.run_command("true", [], session=session, host_cwd=str(tmp_path))


def test_session_must_be_a_session(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"containerrunner\.Session"):
        containerrunner.run_command("true", [], session="s1", host_cwd=str(tmp_path))


def test_session_mounts_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        containerrunner.Session(mounts=["/"])


def _record(runtime: Path, ident: str, **kw: Any) -> SessionRecord:
    values: dict[str, Any] = dict(
        ident=ident, container=f"containerrunner_session-{ident}", engine="podman",
        executable="/usr/bin/podman", image="localhost/ee:1", image_id="sha256:ab",
        mounts=(Mount.same_path(str(runtime)), Mount("/srv/p", "/data", read_only=True)),
        created=time.time() - 90, held_by="cli", runtime_dir=str(runtime),
    )  # fmt: skip
    values.update(kw)
    return SessionRecord(**values)


def test_a_session_record_reads_back_as_written_with_its_owner(tmp_path: Path) -> None:
    runtime = Path(make_dir(fresh_path("session-abc", str(tmp_path))))
    record = _record(runtime, "abc")
    write_record(record)
    back = read_record(str(runtime))
    assert back is not None and back.owner is not None and back.owner.pid == os.getpid()
    assert dataclasses.replace(back, owner=None) == record
    assert [r.ident for r in live_sessions(str(tmp_path))] == ["abc"]
    assert user_mounts(back) == ["/srv/p:/data:ro"]  # not its own runtime dir


def test_a_dead_holders_or_malformed_record_is_not_a_live_session(tmp_path: Path) -> None:
    dead = Owner(pid=2**22 + 7, started=1, host=socket.gethostname())
    runtime = Path(make_dir(fresh_path("session-dead", str(tmp_path)), owner=dead))
    write_record(_record(runtime, "dead"))
    broken = Path(make_dir(fresh_path("session-broken", str(tmp_path))))
    (broken / SESSION_FILE).write_text('{"ident": 1}')
    assert read_record(str(broken)) is None
    assert live_sessions(str(tmp_path)) == []


def test_find_session_takes_an_ident_or_a_unique_prefix(tmp_path: Path) -> None:
    records = [_record(tmp_path, "ab12"), _record(tmp_path, "ab34"), _record(tmp_path, "ab")]
    assert find_session("ab34", records).ident == "ab34"
    assert find_session("ab", records).ident == "ab"  # exact wins over prefixes
    with pytest.raises(ConfigurationError, match="'a' is ambiguous: it starts ab12, ab34, ab"):
        find_session("a", records)
    with pytest.raises(ConfigurationError, match=r"no running session 'zz'.*session list"):
        find_session("zz", records)


def test_an_attached_session_is_used_not_owned(tmp_path: Path, monkeypatch: Any) -> None:
    runtime = Path(make_dir(fresh_path("session-att", str(tmp_path))))
    write_record(_record(runtime, "att-1"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    session = containerrunner.Session.attach("att")
    assert (session.ident, session.container, session.engine_name) == (
        "att-1", "containerrunner_session-att-1", "podman",
    )  # fmt: skip
    assert session.attached and session.running and session.runtime_dir == str(runtime)
    session.check_mounts([Mount("/srv/p/inv", "/data/inv", read_only=True)])
    with pytest.raises(ConfigurationError, match="/srv/p/out"):
        session.check_mounts([Mount("/srv/p/out", "/data/out")])  # read-only there
    session.close()
    assert not session.running and runtime.is_dir()  # let go of, not removed


def test_the_preloader_log_is_there_empty_before_the_container_starts(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """So a first call that comes before the container's shell opened it waits for the
    preloader ("starting") instead of falling back to exec (engine mocked: argv only)."""
    from containerrunner import session as session_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(session_module, "detect_engine", lambda name: PODMAN)
    monkeypatch.setattr(session_module, "check_default_network", lambda *a: None)
    monkeypatch.setattr(session_module, "ensure_image", lambda *a, **k: "sha256:abc")
    monkeypatch.setattr(session_module, "_remove", lambda engine, name, runtime: None)
    seen: list[tuple[str, int]] = []

    def run_engine(engine: Engine, argv: list[str], timeout: float) -> Any:
        log = argv[-1]
        seen.append((os.path.basename(log), os.path.getsize(log)))
        return dataclasses.make_dataclass("Done", ["returncode", "stderr"])(0, "")

    monkeypatch.setattr(session_module, "run_engine", run_engine)
    session = containerrunner.Session(image="localhost/ee:latest", engine="podman", mounts=[])
    session.start()
    runtime = session.runtime_dir
    try:
        assert seen == [("preloader.log", 0)]
    finally:
        session._finalizer.detach()  # type: ignore[union-attr]
        session_module.remove_dir(runtime)
