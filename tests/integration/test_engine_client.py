"""The engine client against the real engines: podman through its API service (a private one
this process starts, unless the host runs one), docker through its daemon's API."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from containerrunner.isolation import client, podman_service
from containerrunner.isolation.client import client_for
from containerrunner.isolation.engine import (
    LABEL,
    LABEL_IDENT,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_UID,
    Engine,
)
from containerrunner.isolation.reaper import list_ours, reap_orphans, remove_container
from containerrunner.tempdirs import services_in_tempdir
from tests.conftest import EE_IMAGE, our_containers

pytestmark = pytest.mark.integration

API = {"podman": "the podman API", "docker": "the docker API"}


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    client.forget_clients()
    yield
    client.forget_clients()


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def start_orphan(engine: Engine, name: str, owner_pid: int) -> None:
    """A labelled container like a job's, owned by `owner_pid` of this host and user."""
    labels = {
        LABEL: "1",
        LABEL_IDENT: name,
        LABEL_OWNER_PID: str(owner_pid),
        LABEL_OWNER_HOST: socket.gethostname(),
        LABEL_OWNER_UID: str(os.getuid()),
    }
    flags = [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
    subprocess.run(
        engine.command("run", "-d", "--name", name, *flags, EE_IMAGE, "sleep", "300"),
        check=True,
        capture_output=True,
    )


def cli_inspect(engine: Engine, image: str) -> dict[str, object]:
    out = subprocess.run(
        engine.command("image", "inspect", image), capture_output=True, text=True, check=True
    ).stdout
    doc = json.loads(out)[0]
    assert isinstance(doc, dict)
    return doc


def test_image_is_one_api_query_with_the_clis_answer(engine: Engine) -> None:
    engine_client = client_for(engine)
    info = engine_client.image(EE_IMAGE)
    assert engine_client.last_via == API[engine.name]
    doc = cli_inspect(engine, EE_IMAGE)
    assert info is not None
    assert info.id.removeprefix("sha256:") == str(doc["Id"]).removeprefix("sha256:")
    assert "containerrunner.recipe" in info.labels
    assert list(info.repo_digests) == doc.get("RepoDigests", [])
    assert engine_client.image("localhost/containerrunner-no-such-image:x") is None


ONE_SHOT = """
import json, sys
import containerrunner
from containerrunner.isolation import podman_service
out, err, rc = containerrunner.run_command(
    "sh", ["-c", "echo started"], process_isolation=True,
    process_isolation_executable=sys.argv[1], container_image=sys.argv[2], quiet=True)
libraries = sorted({"docker", "podman"} & set(sys.modules))
service = podman_service.current_private() is not None
print(json.dumps({"rc": rc, "out": out, "libraries": libraries, "service": service}))
"""


def test_a_one_shot_job_starts_without_the_engine_library(engine: Engine) -> None:
    # a job's image query goes through the API only once connected: a fresh process's first
    # job imports neither library and starts no podman service (docs/architecture.md)
    env = {k: v for k, v in os.environ.items() if k != client.API_VARIABLE}
    proc = subprocess.run(
        [sys.executable, "-c", ONE_SHOT, engine.name, EE_IMAGE],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["rc"] == 0 and "started" in got["out"]
    assert got["libraries"] == [] and got["service"] is False


def test_reaper_lists_and_removes_through_the_api(engine: Engine) -> None:
    name = f"containerrunner_eng12-orphan-{os.getpid()}-{engine.name}"
    start_orphan(engine, name, dead_pid())
    try:
        assert name in [c["name"] for c in list_ours(engine)]
        assert client_for(engine).last_via == API[engine.name]
        assert name in reap_orphans(engine)
        assert name not in our_containers(engine)
        assert remove_container(engine, name) == "gone"
    finally:
        subprocess.run(engine.command("rm", "-f", name), capture_output=True, check=False)


def test_stop_and_kill_through_the_api(engine: Engine) -> None:
    name = f"containerrunner_eng12-stop-{os.getpid()}-{engine.name}"
    start_orphan(engine, name, os.getpid())
    engine_client = client_for(engine)
    try:
        assert engine_client.kill(name, "KILL") is True
        inspected = engine_client.inspect(name)
        assert inspected is not None and inspected["State"]["Status"] != "running"
        assert engine_client.stop(name, 1) is True  # stopped already: fine
        assert engine_client.remove(name) == "removed"
        assert engine_client.inspect(name) is None
        assert engine_client.stop(name, 1) is False
        assert engine_client.last_via == API[engine.name]
    finally:
        subprocess.run(engine.command("rm", "-f", name), capture_output=True, check=False)


@pytest.mark.podman
def test_a_stopped_podman_service_is_restarted_and_says_so(
    engine_probes: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import EngineProbe

    probe = engine_probes["podman"]
    assert isinstance(probe, EngineProbe) and probe.engine is not None
    podman = probe.engine
    if os.environ.get("CONTAINER_HOST") or podman_service.unix_answers(
        podman_service.default_socket()
    ):
        pytest.skip("the host runs a podman service: no private one to stop")
    engine_client = client_for(podman)
    with caplog.at_level(logging.DEBUG, logger="containerrunner.isolation"):
        assert engine_client.image(EE_IMAGE) is not None
        first = podman_service.current_private()
        assert first is not None
        first.proc.kill()  # the service dies mid-session
        first.proc.wait()
        assert engine_client.image(EE_IMAGE) is not None
    second = podman_service.current_private()
    assert second is not None and second.proc.pid != first.proc.pid
    assert engine_client.last_via == "the podman API"
    assert f"the private podman service (pid {first.proc.pid}) ended" in caplog.text
    assert "reconnected: the API answers again" in caplog.text
    assert not os.path.exists(first.directory)


@pytest.mark.podman
def test_no_podman_service_falls_back_to_the_cli_and_says_so(
    engine_probes: dict[str, object],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import EngineProbe

    probe = engine_probes["podman"]
    assert isinstance(probe, EngineProbe) and probe.engine is not None
    # no service can be had: none on the host's socket and starting one fails (podman's CLI
    # itself goes to CONTAINER_HOST when it is set: left unset)
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setattr(podman_service, "default_socket", lambda: "/nonexistent/podman.sock")
    monkeypatch.setattr(podman_service, "private_service", lambda executable: None)
    engine_client = client_for(probe.engine)
    with caplog.at_level(logging.DEBUG, logger="containerrunner.isolation"):
        info = engine_client.image(EE_IMAGE)
        assert engine_client.image(EE_IMAGE) == info
    assert info is not None and engine_client.last_via == "the CLI"
    assert caplog.text.count("using the podman CLI") == 1


@pytest.mark.podman
def test_a_dead_owners_private_service_is_stopped_by_the_next_reap(
    engine_probes: dict[str, object],
) -> None:
    """A process that started the private service and was SIGKILLed: the next reap stops the
    service (its environment names its dir) and removes the dir."""
    from containerrunner.tempdirs import reap_stale
    from tests.conftest import EngineProbe

    probe = engine_probes["podman"]
    assert isinstance(probe, EngineProbe) and probe.engine is not None
    code = (
        "import os, signal, sys\n"
        "from containerrunner.isolation import podman_service\n"
        f"s = podman_service.private_service({probe.engine.executable!r})\n"
        "print(s.proc.pid, s.directory, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == -9, proc.stderr
    pid_text, directory = proc.stdout.split()
    service_pid = int(pid_text)
    pidfd = os.pidfd_open(service_pid)
    try:
        assert directory in services_in_tempdir()
        assert directory in reap_stale()
        # the service ended (its pidfd is readable once it has exited)
        import select

        assert select.select([pidfd], [], [], 10)[0] == [pidfd]
    finally:
        os.close(pidfd)
    assert not os.path.exists(directory)


def test_cleanup_command_reports_what_it_removed(engine: Engine) -> None:
    name = f"containerrunner_eng12-cli-{os.getpid()}-{engine.name}"
    start_orphan(engine, name, dead_pid())
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "containerrunner", "cleanup", "--engine", engine.name],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"removed {engine.name} container {name} (owner pid" in proc.stdout
        assert name not in our_containers(engine)
    finally:
        subprocess.run(engine.command("rm", "-f", name), capture_output=True, check=False)
