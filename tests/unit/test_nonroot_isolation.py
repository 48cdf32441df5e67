"""A non-root caller, without processes: docker's generated passwd entry (and its mount by the
Runner), rootless podman's default-network check, exec's --container-network."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from containerrunner import runner as runner_module
from containerrunner.cli import execcmd
from containerrunner.cli.args import parse_args
from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import EngineError
from containerrunner.isolation.engine import CONTAINER_HOME, Engine, login_name
from containerrunner.isolation.network import check_default_network, tun_problem
from containerrunner.isolation.types import Invocation
from containerrunner.job import Job
from containerrunner.process import ProcessControls, ProcessResult
from containerrunner.runner import Runner
from containerrunner.tempdirs import runtime_dir_path

DOCKER = Engine(name="docker", executable="docker")
ROOTLESS = Engine(name="podman", executable="podman", rootless=True)
ROOTFUL = Engine(name="podman", executable="podman")
NO_TUN = "/nonexistent/dev/net/tun"


def test_docker_non_root_gets_a_passwd_entry_with_the_container_home() -> None:
    passwd = DOCKER.passwd_file(1001, 1002, "alice")
    assert passwd is not None
    entries = [line.split(":") for line in passwd.splitlines()]
    assert ["alice", "x", "1001", "1002", "alice", CONTAINER_HOME, "/bin/sh"] in entries
    assert entries[0][:3] == ["root", "x", "0"]


@pytest.mark.parametrize(
    ("engine", "uid"),
    [(DOCKER, 0), (ROOTLESS, 1001), (ROOTFUL, 0)],
    ids=["docker-root", "podman-rootless", "podman-rootful"],
)
def test_no_passwd_file_where_the_engine_gives_an_entry(engine: Engine, uid: int) -> None:
    assert engine.passwd_file(uid, uid, "alice") is None


def test_login_name_of_a_uid_without_entry() -> None:
    assert login_name(0) == "root"
    assert login_name(2**31 - 7) == "containerrunner"


def test_default_network_without_tun_is_refused_with_the_way_out() -> None:
    with pytest.raises(EngineError) as raised:
        check_default_network(ROOTLESS, None, (), device=NO_TUN)
    message = str(raised.value)
    assert "rootless podman" in message and NO_TUN in message
    assert "No such file or directory" in message
    assert "container_network='none'" in message and "container_network='host'" in message
    assert "--container-network none" in message


@pytest.mark.parametrize(
    ("engine", "network", "options"),
    [
        (ROOTLESS, "none", ()),
        (ROOTLESS, "host", ()),
        (ROOTLESS, None, ("--network=host",)),
        (ROOTLESS, None, ("--net", "none")),
        (ROOTFUL, None, ()),
        (DOCKER, None, ()),
    ],
    ids=["none", "host", "option", "net-option", "rootful", "docker"],
)
def test_a_chosen_network_or_another_engine_is_not_checked(
    engine: Engine, network: str | None, options: tuple[str, ...]
) -> None:
    check_default_network(engine, network, options, device=NO_TUN)


def test_tun_problem_says_why() -> None:
    assert tun_problem(NO_TUN) == "No such file or directory"


def test_runner_mounts_the_passwd_file_for_docker_as_non_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 4321)
    monkeypatch.setattr(runner_module, "engine_version", lambda engine: "20.10.24")
    seen: dict[str, Any] = {}

    def fake(inv: Invocation, controls: ProcessControls) -> ProcessResult:
        argv = list(inv.argv)
        source = next(a for a in argv if a.endswith(":/etc/passwd:ro")).split(":")[0]
        seen["argv"] = argv
        seen["passwd"] = Path(source).read_text()
        return ProcessResult(rc=0, outcome="successful", reason="rc 0")

    job = Job(
        command=("true",),
        execution=ExecutionOptions(host_cwd=str(tmp_path), process_isolation=True),
        ident="pw1",
        artifact_base=str(tmp_path / "art"),
        runtime_dir=runtime_dir_path("pw1"),
    )
    runner = Runner(SimpleNamespace(job=job))
    runner.engine_resolver = lambda job: (DOCKER, "sha256:0")  # type: ignore[method-assign, assignment]
    runner.process_runner = fake  # type: ignore[method-assign, assignment]
    assert runner.run() == ("successful", 0)
    assert seen["argv"][seen["argv"].index("--user") + 1] == f"4321:{os.getgid()}"
    assert f":4321:{os.getgid()}:" in seen["passwd"]
    assert not os.path.exists(job.runtime_dir), "the runtime dir (and its passwd) was left"


def test_exec_passes_container_network(monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}

    def run_command(cmd: str, args: list[str], **options: Any) -> tuple[str, str, int]:
        got.update(options, cmd=[cmd, *args])
        return "", "", 0

    monkeypatch.setattr("containerrunner.interface.run_command", run_command)
    args = parse_args(["exec", "--engine", "podman", "--container-network", "none", "--", "id"])
    assert execcmd.cmd_exec(args) == 0
    assert got["container_network"] == "none" and got["cmd"] == ["id"]
    assert got["input_fd"] is sys.stdin
