"""engine_url for real: a second docker daemon on another "machine", a network namespace
(tests/netns.py: a veth pair on 10.231.18.0/24) where it listens on tcp://10.231.18.2:2375
(plain tcp, reachable only through that private veth), with the EE image loaded from the
shared daemon. run, run_command and get_plugin_docs through engine_url give what the local
docker gives (the job streamed: no bind mount reaches the remote), and a caller SIGKILLed
mid-job leaves a container on the remote that the next call's reaper removes there; a job's
`passwords` and `ssh_key` reach the remote container (over tcp, docker's ssh:// and podman's
ssh://) and no file on the caller's side.
Everything is torn down afterwards, and asserted so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.engine import LABEL_ENDPOINT, Engine, make_engine
from tests.conftest import EngineProbe, our_containers, require_engine
from tests.integration.dockerd import PrivateDockerd
from tests.integration.support import (
    EE_IMAGE,
    LOCAL_VARS,
    container_kwargs,
    copy_examples,
    event_shape,
    kill_owner_once_started,
    make_ssh_key,
)
from tests.integration.test_stream_secrets import assert_played, secret_job
from tests.netns import NetworkNamespace, available

REPO = Path(__file__).resolve().parents[2]
PREFIX = "10.231.18"

pytestmark = pytest.mark.docker


class RemoteDocker:
    def __init__(self, ns: NetworkNamespace, daemon: PrivateDockerd) -> None:
        self.ns, self.daemon = ns, daemon
        self.url = f"tcp://{ns.address}:2375"
        # the remote daemon seen through its URL, as the job's client sees it
        self.engine = make_engine("docker", endpoint=self.url)

    def containers(self, owner_pid: int | None = None) -> list[str]:
        label = "containerrunner" if owner_pid is None else f"containerrunner.owner-pid={owner_pid}"
        out = subprocess.run(
            ["docker", "-H", self.url, "ps", "-a", "--filter", f"label={label}",
             "--format", "{{.Names}}"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        return out.split()


@pytest.fixture(scope="module")
def remote(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]
) -> Iterator[RemoteDocker]:
    require_engine(request, engine_probes, "docker")
    why = available()
    if why:
        pytest.skip(why)
    ns = NetworkNamespace(f"cr-remote-{os.getpid()}", PREFIX)
    with ns:
        daemon = PrivateDockerd(EE_IMAGE, netns=ns.name, listen=(f"tcp://{ns.address}:2375",))
        try:
            yield RemoteDocker(ns, daemon)
        finally:
            daemon.close()
    assert not daemon.processes(), "the remote dockerd left processes"
    assert not ns.exists() and not ns.host_link_exists(), "the namespace or its veth is left"


@pytest.fixture
def local_docker(engine_probes: dict[str, EngineProbe]) -> Engine:
    engine = engine_probes["docker"].engine
    assert engine is not None
    return engine


@pytest.fixture(scope="module")
def local_demo(
    remote: RemoteDocker,
    engine_probes: dict[str, EngineProbe],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, dict[str, Any]]:
    """(event shape, stats) of the demo on the local docker, once for the module."""
    engine = engine_probes["docker"].engine
    assert engine is not None
    demo = copy_examples(tmp_path_factory.mktemp("local"))
    r = containerrunner.run(
        private_data_dir=str(demo), playbook="site.yml", **container_kwargs(engine)
    )
    assert (r.status, r.rc) == ("successful", 0)
    return event_shape(r.events), r.stats


@pytest.fixture
def nothing_left(remote: RemoteDocker, local_docker: Engine) -> Iterator[RemoteDocker]:
    before = set(our_containers(local_docker, os.getpid()))
    yield remote
    assert remote.containers(os.getpid()) == [], "containers left on the remote"
    assert set(our_containers(local_docker, os.getpid())) == before


def test_run_through_engine_url_gives_the_local_result(
    nothing_left: RemoteDocker, local_docker: Engine, local_demo: tuple[Any, Any], tmp_path: Path
) -> None:
    demo = copy_examples(tmp_path)
    remote = containerrunner.run(
        private_data_dir=str(demo), playbook="site.yml", ident="remote",
        engine_url=nothing_left.url, **container_kwargs(local_docker),
    )  # fmt: skip
    assert (remote.status, remote.rc) == ("successful", 0), remote.stdout.read()
    assert (event_shape(remote.events), remote.stats) == local_demo
    provenance = json.loads((demo / "artifacts" / "remote" / "provenance.json").read_text())
    assert provenance["engine_endpoint"] == nothing_left.url
    assert provenance["container_transport"] == "stream"


def test_run_command_through_engine_url(
    nothing_left: RemoteDocker, local_docker: Engine, tmp_path: Path
) -> None:
    argv = ["ansible", ["--version"]]
    where = {"host_cwd": str(tmp_path), **container_kwargs(local_docker)}
    local = containerrunner.run_command(*argv, **where)  # type: ignore[arg-type]
    remote = containerrunner.run_command(*argv, engine_url=nothing_left.url, **where)  # type: ignore[arg-type]
    assert remote == local and remote[2] == 0


def test_get_plugin_docs_through_engine_url(
    nothing_left: RemoteDocker, local_docker: Engine, tmp_path: Path
) -> None:
    where = {"host_cwd": str(tmp_path), **container_kwargs(local_docker)}
    query: dict[str, Any] = {"plugin_type": "module", "response_format": "json"}
    local, _ = containerrunner.get_plugin_docs(["ansible.builtin.ping"], **query, **where)
    remote, _ = containerrunner.get_plugin_docs(
        ["ansible.builtin.ping"], **query, engine_url=nothing_left.url, **where
    )
    assert remote == local
    assert remote["ansible.builtin.ping"]["doc"]["module"] == "ping"


NAP = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Nap
      ansible.builtin.command: sleep 600
"""


def test_a_canceled_remote_job_is_stopped_on_the_remote(
    nothing_left: RemoteDocker, local_docker: Engine, tmp_path: Path
) -> None:
    pdd = tmp_path / "nap"
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "project" / "site.yml").write_text(NAP)
    (pdd / "inventory" / "hosts").write_text(f"box {LOCAL_VARS}\n")
    napping = threading.Event()

    def on_event(event: dict[str, Any]) -> bool:
        if event.get("event") == "runner_on_start":
            napping.set()
        return True

    thread, runner = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="site.yml", engine_url=nothing_left.url,
        event_handler=on_event, cancel_callback=napping.is_set, **container_kwargs(local_docker),
    )  # fmt: skip
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert runner.status == "canceled"
    assert nothing_left.containers(os.getpid()) == []


KILLED_OWNER = textwrap.dedent(
    """\
    import json, sys
    import containerrunner
    containerrunner.run_command(
        "sh", ["-c", "echo up; exec sleep 600"], output_fd=sys.stdout, **json.loads(sys.argv[1])
    )
    """
)


def test_a_killed_callers_remote_container_is_reaped_by_the_next_call(
    nothing_left: RemoteDocker, local_docker: Engine, tmp_path: Path
) -> None:
    where = {
        "host_cwd": str(tmp_path),
        "engine_url": nothing_left.url,
        **container_kwargs(local_docker),
    }
    owner_pid, _ = kill_owner_once_started(KILLED_OWNER, where)
    left = nothing_left.containers(owner_pid)
    assert len(left) == 1, left
    labels = subprocess.run(
        ["docker", "-H", nothing_left.url, "inspect", "--format",
         f'{{{{index .Config.Labels "{LABEL_ENDPOINT}"}}}}', left[0]],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert labels == nothing_left.url

    _out, err, rc = containerrunner.run_command(
        "true", [], host_cwd=str(tmp_path)
    )  # any call reaps
    assert rc == 0, err
    assert nothing_left.containers(owner_pid) == []


@pytest.fixture(scope="module")
def remote_sshd(
    remote: RemoteDocker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """An SSH server (tests/sshserver.py, paramiko: the machine has no sshd) on the
    namespace's address, port 22, whose commands see the remote dockerd as DOCKER_HOST: what
    docker's ssh:// runs there (`docker system dial-stdio`). (key file, known_hosts line)."""
    pytest.importorskip("paramiko")
    keys = tmp_path_factory.mktemp("ssh")
    key = keys / "id"
    key.write_text(make_ssh_key(keys))
    key.chmod(0o600)
    server = subprocess.Popen(
        ["nsenter", f"--net={remote.ns.path}", sys.executable, "-m", "tests.sshserver",
         remote.ns.address, "22", str(key)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "DOCKER_HOST": remote.daemon.host},
    )  # fmt: skip
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().split()
        assert ready[:1] == ["ready"], f"the ssh server did not start: {ready}"
        yield key, f"{remote.ns.address} {ready[1]} {ready[2]}"
    finally:
        server.kill()  # a test server: nothing of it to close but the process
        server.wait(30)


@pytest.fixture
def ssh_client(
    remote_sshd: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ssh` on PATH logs in with the test's key and knows the server's host key (docker's
    ssh:// runs the `ssh` it finds on PATH; root's ~/.ssh is left alone)."""
    key, known = remote_sshd
    (tmp_path / "known_hosts").write_text(known + "\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec /usr/bin/ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={tmp_path / 'known_hosts'} "
        '"$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_run_through_docker_over_ssh(
    nothing_left: RemoteDocker,
    ssh_client: None,
    local_docker: Engine,
    local_demo: tuple[Any, Any],
    tmp_path: Path,
) -> None:
    demo = copy_examples(tmp_path)
    url = f"ssh://root@{nothing_left.ns.address}"
    remote = containerrunner.run(
        private_data_dir=str(demo), playbook="site.yml", ident="ssh", engine_url=url,
        **container_kwargs(local_docker),
    )  # fmt: skip
    assert (remote.status, remote.rc) == ("successful", 0), remote.stdout.read()
    assert (event_shape(remote.events), remote.stats) == local_demo
    provenance = json.loads((demo / "artifacts" / "ssh" / "provenance.json").read_text())
    assert provenance["engine_endpoint"] == url


def test_passwords_and_ssh_key_through_engine_url(
    nothing_left: RemoteDocker, local_docker: Engine, tmp_path: Path
) -> None:
    """The prompt answered and the key in the agent on the remote; neither in the output nor
    in a file on the caller's side (tests/integration/test_stream_secrets.py's job)."""
    job = secret_job(tmp_path)
    r = containerrunner.run(
        **job.kwargs(), ident="secrets", engine_url=nothing_left.url,
        **container_kwargs(local_docker),
    )  # fmt: skip
    job.assert_no_secret(assert_played(r, job))


def test_passwords_and_ssh_key_through_docker_over_ssh(
    nothing_left: RemoteDocker, ssh_client: None, local_docker: Engine, tmp_path: Path
) -> None:
    job = secret_job(tmp_path)
    r = containerrunner.run(
        **job.kwargs(), ident="secrets-ssh", engine_url=f"ssh://root@{nothing_left.ns.address}",
        **container_kwargs(local_docker),
    )  # fmt: skip
    job.assert_no_secret(assert_played(r, job))


ONLY_HERE = "localhost/cr-remote-ee:test"  # the EE's name in the private podman store only


class PrivatePodmanService:
    """`podman system service` on a private store (its own --root, --runroot, --tmpdir under a
    short temp dir: the shared store is untouched) with the EE loaded from `podman save`."""

    def __init__(self, image: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="crp-"))
        self.socket = self.dir / "podman.sock"
        self.store = [
            "--root", str(self.dir / "root"), "--runroot", str(self.dir / "run"),
            "--tmpdir", str(self.dir / "tmp"),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            save = subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE)
            load = subprocess.run(
                ["podman", *self.store, "load", "-q"], stdin=save.stdout, capture_output=True
            )
            assert save.stdout is not None
            save.stdout.close()
            assert save.wait() == 0 and load.returncode == 0, load.stderr
            # a name only this store has: a job that runs with it ran on this service
            subprocess.run(["podman", *self.store, "tag", image, ONLY_HERE], check=True)
            self.proc = subprocess.Popen(
                ["podman", *self.store, "system", "service", "--time=0", f"unix://{self.socket}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 90
            while not self.answers():  # a condition with a deadline, not a sleep
                assert self.proc.poll() is None, "podman system service exited"
                assert time.monotonic() < deadline, "podman system service did not answer"
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(0.2)
        except BaseException:
            self.close()
            raise

    def answers(self) -> bool:
        proc = subprocess.run(
            ["podman", "--url", f"unix://{self.socket}", "version"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        return proc.returncode == 0

    def containers(self) -> list[str]:
        out = subprocess.run(
            ["podman", *self.store, "ps", "-a", "--filter", "label=containerrunner",
             "--format", "{{.Names}}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return out.split()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.dir) + "/")
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.podman
def test_run_through_podman_over_ssh(
    remote: RemoteDocker,
    local_demo: tuple[Any, Any],
    engine_probes: dict[str, EngineProbe],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_engine(request, engine_probes, "podman")
    service = PrivatePodmanService(EE_IMAGE)
    try:
        key = tmp_path / "id"
        key.write_text(make_ssh_key(tmp_path))
        key.chmod(0o600)
        server = subprocess.Popen(
            ["nsenter", f"--net={remote.ns.path}", sys.executable, "-m", "tests.sshserver",
             remote.ns.address, "2222", str(key), str(service.socket)],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            assert server.stdout.readline().startswith("ready")
            monkeypatch.setenv("CONTAINER_SSHKEY", str(key))
            url = f"ssh://root@{remote.ns.address}:2222{service.socket}"
            demo = copy_examples(tmp_path)
            r = containerrunner.run(
                private_data_dir=str(demo), playbook="site.yml", engine_url=url,
                container_network="none", pull="never",
                **container_kwargs(make_engine("podman"), ONLY_HERE),
            )  # fmt: skip
            assert (r.status, r.rc) == ("successful", 0), r.stdout.read()
            assert (event_shape(r.events), r.stats) == local_demo
            assert service.containers() == []
            provenance = json.loads(
                (demo / "artifacts" / r.config.ident / "provenance.json").read_text()
            )
            assert (provenance["engine_endpoint"], provenance["engine"]) == (url, "podman")
            job = secret_job(tmp_path / "secrets")  # passwords and ssh_key there too
            r = containerrunner.run(
                **job.kwargs(), engine_url=url, container_network="none", pull="never",
                **container_kwargs(make_engine("podman"), ONLY_HERE),
            )  # fmt: skip
            job.assert_no_secret(assert_played(r, job))
            assert service.containers() == []
        finally:
            server.kill()
            server.wait(30)
    finally:
        service.close()
    assert not service.dir.exists()
