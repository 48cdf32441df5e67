"""Warm sessions without an engine: the exec command line (golden, per engine), the mount
check and the options a call in a session cannot have."""

from __future__ import annotations

from pathlib import Path

import pytest

import containerrunner
from containerrunner.errors import ConfigurationError
from containerrunner.isolation.argv import PIDFILE_WRAPPER, build_exec_argv
from containerrunner.isolation.engine import Engine
from containerrunner.isolation.types import ExecSpec, Mount
from containerrunner.session import _covers

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
