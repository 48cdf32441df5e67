"""The scheduler interface and the swarm backend's command lines (no process started)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from containerrunner.cluster.base import (
    AdapterSpec,
    SchedulerOptions,
    backend_for,
    check_scheduler,
)
from containerrunner.cluster.lines import parse_line, split_payload
from containerrunner.cluster.swarm import SECRET_PART, WRAPPER, SwarmBackend
from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ConfigurationError


def spec(**over: object) -> AdapterSpec:
    values: dict[str, object] = {
        "backend": "swarm",
        "options": {},
        "image": "reg.example:5000/ee:1",
        "command": ["python3", "-c", "pass"],
        "labels": {"containerrunner": "1", "containerrunner.ident": "abc"},
        "ident": "abc",
    }
    values.update(over)
    return AdapterSpec(**values)  # type: ignore[arg-type]


def test_swarm_service_create_argv_golden() -> None:
    backend = SwarmBackend(
        SchedulerOptions.from_mapping(
            {
                "constraints": ["node.role==worker"],
                "cpu_limit": 0.5,
                "memory_limit": "256M",
                "engine_url": "tcp://10.0.0.1:2375",
            }
        )
    )
    argv = backend.create_argv(spec(), [("cr-abc-cr-meta", "cr-meta")])
    assert argv == [
        "service", "create", "--detach", "--quiet", "--name", "cr-abc",
        "--replicas", "1", "--restart-condition", "none", "--init", "--no-healthcheck",
        "--label", "containerrunner=1", "--container-label", "containerrunner=1",
        "--label", "containerrunner.ident=abc", "--container-label", "containerrunner.ident=abc",
        "--secret", "source=cr-abc-cr-meta,target=cr-meta",
        "--constraint", "node.role==worker", "--limit-cpu", "0.5", "--limit-memory", "256M",
        "reg.example:5000/ee:1", "python3", "-c", WRAPPER,
    ]  # fmt: skip
    assert backend.docker_argv("service", "ls")[:3] == ["docker", "-H", "tcp://10.0.0.1:2375"]


def test_registry_auth_logs_in_and_the_spec_file_has_no_password() -> None:
    auth = {"host": "reg.example:5000", "username": "u", "password": "s3cret-marker"}
    options = SchedulerOptions.from_mapping({"registry_auth": auth})
    assert "--with-registry-auth" in SwarmBackend(options).create_argv(spec(), [])
    assert "s3cret-marker" not in repr(options)
    assert "s3cret-marker" not in str(options.to_json())


def test_registry_login_goes_to_a_private_docker_config_removed_after_create(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The login and the `service create --with-registry-auth` that sends the credential
    share a fresh 0700 DOCKER_CONFIG under the temp dir, gone once submit returns; the
    password goes on stdin only."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    calls: list[tuple[list[str], bytes | None, str | None, int | None]] = []

    def fake_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        env = kw.get("env") or {}
        config = env.get("DOCKER_CONFIG")
        mode = os.stat(config).st_mode & 0o777 if config else None
        calls.append((argv, kw.get("input"), config, mode))
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setattr(subprocess, "run", fake_run)
    auth = {"host": "reg.example:5000", "username": "u", "password": "s3cret-marker"}
    backend = SwarmBackend(SchedulerOptions.from_mapping({"registry_auth": auth}))
    backend.submit(spec(), b"payload")
    login = next(c for c in calls if c[0][1] == "login")
    create = next(c for c in calls if c[0][1:3] == ["service", "create"])
    assert login[1] == b"s3cret-marker" and all("s3cret" not in a for a in login[0])
    assert login[2] is not None and login[2] == create[2]
    assert Path(login[2]).parent == tmp_path and login[3] == 0o700
    assert not Path(login[2]).exists()
    assert all(c[2] is None for c in calls if c not in (login, create))


def test_adapter_spec_takes_env_values_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("JOB_TOKEN", "v1")
    monkeypatch.setenv("CONTAINERRUNNER_REGISTRY_PASSWORD", "pw")
    job = spec(
        env_names=["JOB_TOKEN", "UNSET_NAME"],
        options=SchedulerOptions.from_mapping(
            {"registry_auth": {"host": "r", "username": "u", "password": "pw"}}
        ).to_json(),
    )
    assert job.env() == {"JOB_TOKEN": "v1"}
    auth = job.scheduler_options().registry_auth
    assert auth is not None and auth.password == "pw"


def test_payload_split_under_the_secret_limit() -> None:
    payload = bytes(range(256)) * 5000  # 1.28 MB
    parts = split_payload(payload, SECRET_PART)
    assert len(parts) == 3 and all(len(p) <= 480 * 1024 for p in parts)
    assert b"".join(parts) == payload
    assert split_payload(b"", SECRET_PART) == [b""]


def test_wrapper_lines() -> None:
    assert parse_line("CRS 3 aGk=\n") == ("data", 3, b"hi")
    assert parse_line("CRS END 2\n") == ("end", 2, b"")
    assert parse_line("[WARNING]: something on stderr\n") is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"constraint": ["x"]}, "unknown key(s) constraint"),
        ({"constraints": "node.role==worker"}, "must be a list of str"),
        ({"registry_auth": {"host": "r"}}, "scheduler_options['registry_auth']"),
        ("swarm", "must be a dict"),
    ],
)
def test_bad_scheduler_options_name_the_key(given: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        SchedulerOptions.from_mapping(given)  # type: ignore[arg-type]


def test_scheduler_kwarg() -> None:
    options = ExecutionOptions.from_kwargs(scheduler="swarm")
    assert (options.process_isolation, options.transport) == (True, "stream")
    assert options.scheduler_options == SchedulerOptions()
    assert ExecutionOptions.from_kwargs().scheduler == "local"
    with pytest.raises(ConfigurationError, match="scheduler must be one of"):
        check_scheduler("nomad")
    with pytest.raises(ConfigurationError, match="container_transport='mounts'"):
        ExecutionOptions.from_kwargs(scheduler="swarm", container_transport="mounts")
    with pytest.raises(ConfigurationError, match="scheduler_options needs"):
        ExecutionOptions.from_kwargs(scheduler_options={"cpu_limit": "1"})
    with pytest.raises(ConfigurationError, match="no scheduler backend"):
        backend_for("local")


def test_cli_scheduler_options() -> None:
    from containerrunner.cli.args import UsageError
    from containerrunner.cli.jobcmds import scheduler_options

    assert scheduler_options(None) is None
    assert scheduler_options(
        ["constraints=node.role==worker", "constraints=node.labels.ee==1", "memory_limit=1G"]
    ) == {"constraints": ["node.role==worker", "node.labels.ee==1"], "memory_limit": "1G"}
    with pytest.raises(UsageError, match="--scheduler-option 'x': expected KEY=VALUE"):
        scheduler_options(["x"])
