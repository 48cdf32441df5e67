"""engine_url: validation, the transport a remote endpoint forces, and ONE endpoint for the
engine client of `run` (its environment), the container's label and the owner record."""

from __future__ import annotations

from pathlib import Path

import pytest

from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ConfigurationError, EngineError
from containerrunner.isolation import Engine, containerize
from containerrunner.isolation.engine import LABEL_ENDPOINT, endpoint_env
from containerrunner.streaming.relay import RelaySpec

DOCKER = Engine(name="docker", executable="/usr/bin/docker")
REMOTE = "tcp://10.231.18.2:2375"


def opts(tmp_path: Path, **kw: object) -> ExecutionOptions:
    return ExecutionOptions.from_kwargs(process_isolation=True, host_cwd=str(tmp_path), **kw)


@pytest.mark.parametrize("url", [REMOTE, "ssh://root@10.0.0.1:2222/run/podman.sock", "ssh://h"])
def test_a_remote_engine_url_streams_the_job(tmp_path: Path, url: str) -> None:
    options = opts(tmp_path, engine_url=url)
    assert (options.engine_url, options.transport) == (url, "stream")


def test_a_local_socket_keeps_the_bind_mounts(tmp_path: Path) -> None:
    options = opts(tmp_path, engine_url="unix:///run/other.sock")
    assert options.transport == "mounts"


def test_mounts_with_a_remote_url_names_both(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"container_transport='mounts' and engine_url="):
        opts(tmp_path, engine_url=REMOTE, container_transport="mounts")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://h:1", "engine_url must be"),
        (42, "engine_url must be"),
        ("tcp://h:port", "engine_url 'tcp://h:port'"),
        ("unix://", "names no socket path"),
        ("tcp://:2375", "names no host"),
    ],
)
def test_a_bad_engine_url_is_named(tmp_path: Path, url: object, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        opts(tmp_path, engine_url=url)


def test_engine_url_needs_process_isolation(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="without process_isolation=True"):
        ExecutionOptions.from_kwargs(engine_url=REMOTE)


@pytest.mark.parametrize("name", ["DOCKER_HOST", "CONTAINER_HOST"])
def test_envvars_may_not_set_the_endpoint(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"envvars sets {name}.*engine_url"):
        opts(tmp_path, envvars={name: REMOTE})


def test_the_callers_remote_docker_host_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", REMOTE)
    assert opts(tmp_path, process_isolation_executable="docker").transport == "stream"
    assert opts(tmp_path, process_isolation_executable="podman").transport == "mounts"
    # an explicit choice stays: the caller asked for mounts on a variable it set
    assert opts(tmp_path, container_transport="mounts").transport == "mounts"


def test_the_run_client_and_the_label_use_the_engine_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/elsewhere.sock")
    engine = Engine(name="docker", executable="/usr/bin/docker", endpoint=REMOTE)
    runtime = tmp_path / "rt"
    runtime.mkdir()
    inv = containerize(
        ["ansible", "--version"],
        options=opts(tmp_path, engine_url=REMOTE),
        ident="job1",
        env={"A": "1"},
        engine=engine,
        runtime_dir=str(runtime),
    )
    assert inv.env["DOCKER_HOST"] == REMOTE and inv.env["A"] == "1"
    argv = RelaySpec.read(str(runtime / "relay.json")).engine_argv
    assert f"{LABEL_ENDPOINT}={REMOTE}" in argv


def test_the_default_endpoint_is_not_labelled(tmp_path: Path) -> None:
    inv = containerize(
        ["ansible", "--version"],
        options=opts(tmp_path),
        ident="job2",
        env={},
        engine=Engine(name="docker", executable="/usr/bin/docker", endpoint=""),
    )
    assert not any(a.startswith(f"{LABEL_ENDPOINT}=") for a in inv.argv)
    assert "DOCKER_HOST" not in inv.env


def test_endpoint_env_sets_or_removes_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "unix:///x.sock")
    assert endpoint_env("podman", None) is None
    assert "CONTAINER_HOST" not in (endpoint_env("podman", "") or {})
    assert (endpoint_env("podman", REMOTE) or {})["CONTAINER_HOST"] == REMOTE
    engine = Engine(name="podman", executable="podman", endpoint=REMOTE)
    assert (engine.where, engine.remote) == (REMOTE, True)


def test_an_engine_url_that_does_not_answer_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from containerrunner.isolation import engine as engine_module

    monkeypatch.setattr(engine_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(engine_module, "engine_answers", lambda *a, **k: False)
    with pytest.raises(EngineError, match=r"no container engine answers at engine_url") as info:
        engine_module.detect_engine("docker", REMOTE)
    assert REMOTE in str(info.value) and "apt-get" not in str(info.value)
