"""container_transport='stream' without running a container: the relayed invocation (no bind
mounts, the bootstrap on stdin), the relay's packing and write-back, and what it refuses.

Processes: none (the engine is not called: containerize gets an Engine value).
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from containerrunner import run, run_command
from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ConfigurationError
from containerrunner.isolation import Engine, Mount, containerize
from containerrunner.isolation.types import StreamSecrets
from containerrunner.streaming.relay import (
    SECRETS_VARIABLE,
    RelayError,
    RelaySpec,
    bootstrap_source,
    pack_mounts,
    take_secrets,
    write_back,
)

PODMAN = Engine(name="podman", executable="/usr/bin/podman")
DOCKER = Engine(name="docker", executable="/usr/bin/docker")


@pytest.mark.parametrize("engine", [PODMAN, DOCKER], ids=lambda e: e.name)
def test_a_streamed_job_runs_the_relay_and_mounts_nothing(engine: Engine, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    options = ExecutionOptions.from_kwargs(
        process_isolation=True, host_cwd=str(project), container_transport="stream"
    )
    inv = containerize(
        ["ansible-playbook", "site.yml"],
        options=options,
        ident="j1",
        env={"TOKEN": "value-not-in-argv", "CONTAINERRUNNER_EVENT_FIFO": "/a/event_fifo"},
        extra_mounts=[Mount.same_path(str(runtime), read_only=True)],
        engine=engine,
        runtime_dir=str(runtime),
    )
    assert inv.argv[1:3] == ("-m", "containerrunner.streaming.relay")
    assert inv.container_name == "containerrunner_j1"
    spec = RelaySpec.read(inv.argv[3])
    argv = spec.engine_argv
    assert argv[0] == engine.executable and "run" in argv and "-i" in argv
    assert not {"-v", "--volume", "--mount"} & set(argv)
    assert not any(a.startswith(("-v=", "--volume=", "--mount=")) for a in argv)
    assert "--user" not in argv and spec.user is None  # root here: the image's root is the caller
    assert argv[-3:] == ["python3", "-c", bootstrap_source()]
    assert "value-not-in-argv" not in json.dumps(argv)
    assert spec.command == ["ansible-playbook", "site.yml"]
    assert spec.fifo == "/a/event_fifo" and spec.cwd == str(project)
    targets = {m["target"]: m["read_only"] for m in spec.mounts}
    assert targets == {str(project): False, str(runtime): True}
    assert stat.S_IMODE(os.stat(inv.argv[3]).st_mode) == 0o600


def test_the_transport_is_validated_and_refuses_what_it_cannot_carry(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="container_transport must be one of"):
        ExecutionOptions.from_kwargs(container_transport="ftp")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "site.yml").write_text("- hosts: all\n")
    with pytest.raises(ConfigurationError, match="cannot carry input_fd"):
        run_command(
            "cat", process_isolation=True, container_transport="stream",
            input_fd=io.BytesIO(b""), runner_mode="subprocess",
        )  # fmt: skip
    with pytest.raises(ConfigurationError, match="'\\(' is not a valid regular expression"):
        run(
            private_data_dir=str(tmp_path), playbook="site.yml", process_isolation=True,
            container_transport="stream", passwords={"(": "y"},
        )  # fmt: skip
    with pytest.raises(ConfigurationError, match="scheduler='swarm' cannot carry ssh_key"):
        run(
            private_data_dir=str(tmp_path), playbook="site.yml", process_isolation=True,
            scheduler="swarm", ssh_key="KEY",
        )  # fmt: skip


def test_secrets_reach_the_relay_in_its_environment_only(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    options = ExecutionOptions.from_kwargs(
        process_isolation=True, host_cwd=str(tmp_path), container_transport="stream"
    )
    key, answer = "KEY-MARKER-81f", "ANSWER-MARKER-81f"
    inv = containerize(
        ["ansible-playbook", "site.yml"],
        options=options,
        ident="j2",
        env={},
        engine=PODMAN,
        runtime_dir=str(runtime),
        secrets=StreamSecrets({"Password:": answer}, key),
    )
    assert json.loads(inv.env[SECRETS_VARIABLE]) == {
        "passwords": {"Password:": answer},
        "ssh_key": key,
    }
    for path in runtime.iterdir():  # the spec file
        assert key not in path.read_text() and answer not in path.read_text()
    assert key not in json.dumps(inv.argv) and answer not in repr(StreamSecrets({"p": answer}))
    with pytest.raises(ValueError, match="by the stream only"):
        containerize(
            ["true"], options=ExecutionOptions.from_kwargs(process_isolation=True), ident="j3",
            env={}, engine=PODMAN, secrets=StreamSecrets(ssh_key=key),
        )  # fmt: skip


def test_the_relay_takes_the_secrets_out_of_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRETS_VARIABLE, json.dumps({"passwords": {}, "ssh_key": "K"}))
    assert take_secrets() == {"ssh_key": "K"}
    assert SECRETS_VARIABLE not in os.environ
    assert take_secrets() == {}


def test_mounts_are_packed_at_their_container_paths(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("A")
    (src / "link").symlink_to("sub/a.txt")
    os.mkfifo(src / "event_fifo")
    key = tmp_path / "key"
    key.write_text("KEY")
    data = pack_mounts(
        [
            {"source": str(src), "target": "/runner/project", "read_only": False},
            {"source": str(key), "target": "/runner/env/ssh_key", "read_only": True},
        ]
    )
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "runner/project/sub/a.txt" in names and "runner/project/link" in names
    assert "runner/env/ssh_key" in names
    assert not any("event_fifo" in n for n in names)


def test_overlapping_mounts_pack_each_name_once_the_deepest_mount_winning(
    tmp_path: Path,
) -> None:
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    (pdd / "env" / "extravars").write_text("from the dir")
    given = tmp_path / "extravars"
    given.write_text("mounted on top")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zipfile warns on a duplicate name
        data = pack_mounts(
            [
                {"source": str(pdd), "target": "/runner", "read_only": False},
                {"source": str(given), "target": "/runner/env/extravars", "read_only": True},
            ]
        )
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert len(names) == len(set(n.rstrip("/") for n in names))
    assert archive.read("runner/env/extravars") == b"mounted on top"


def test_a_socket_under_a_mount_is_refused(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "agent.sock"))
        with pytest.raises(RelayError, match="is a socket"):
            pack_mounts([{"source": str(tmp_path), "target": "/x", "read_only": False}])
    finally:
        sock.close()


def test_write_back_lands_only_under_read_write_mounts(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("runner/project/out/result.txt", "made in the container")
        archive.writestr("runner/project/../escape.txt", "no")
        archive.writestr("etc/passwd", "not a mount")
    write_back(
        buffer.getvalue(),
        [{"source": str(project), "target": "/runner/project", "read_only": False}],
    )
    assert (project / "out" / "result.txt").read_text() == "made in the container"
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]
