"""Jobs as Docker Swarm services, on a real 2-node swarm made on this machine.

Each node is a private dockerd (tests/integration/dockerd.py) in a network namespace of its
own, with its own host name; the nodes' veths meet on a bridge in a third namespace (the
private 10.231.19.0/24; nothing of the machine's network changes). Node 1 inits the swarm,
node 2 joins it. A registry (tests/registry.py: Debian's docker-registry, htpasswd auth, a
self-signed certificate) listens on the bridge's 10.231.19.1 in the hub namespace; the EE
image is loaded into node 1 only and pushed from there, and every job names it by its
registry reference with `registry_auth`, so node 2 gets it by pulling through the swarm's
`--with-registry-auth`. Teardown leaves no namespace, daemon or process (asserted).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from tests import netns
from tests import registry as reg
from tests.conftest import EE_IMAGE, EngineProbe, _unavailable, require_engine
from tests.integration.dockerd import PrivateDockerd
from tests.integration.support import files_containing, new_in_temp, temp_entries

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PREFIX = "10.231.19"
HUB_ADDRESS = f"{PREFIX}.1"  # the bridge's, where the registry listens
PASSWORD = f"Swarm-Registry-Marker-{uuid.uuid4().hex[:12]}"
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
LOCALHOST = (
    "localhost ansible_connection=local "
    'ansible_python_interpreter="{{ ansible_playbook_python }}"\n'
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class SwarmNetwork:
    """A hub namespace with a bridge and one namespace per node, its veth on the bridge."""

    tag: str
    count: int

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    def node(self, i: int) -> str:
        return f"{self.tag}-n{i}"

    def address(self, i: int) -> str:
        return f"{PREFIX}.{11 + i}"

    def names(self) -> list[str]:
        return [self.hub] + [self.node(i) for i in range(self.count)]

    def create(self) -> None:
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "addr", "add", f"{HUB_ADDRESS}/24", "dev", "br0")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for i in range(self.count):
            node, outer, inner = self.node(i), f"h{i}", f"eth{i}"
            _ip("netns", "add", node)
            _ip("-n", self.hub, "link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("-n", self.hub, "link", "set", inner, "netns", node)
            _ip("-n", self.hub, "link", "set", outer, "master", "br0", "up")
            _ip("-n", node, "addr", "add", f"{self.address(i)}/24", "dev", inner)
            _ip("-n", node, "link", "set", inner, "up")
            _ip("-n", node, "link", "set", "lo", "up")

    def delete(self) -> None:
        for name in self.names():
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)

    def left(self) -> list[str]:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        present = {line.split()[0] for line in listed.splitlines() if line.strip()}
        return [name for name in self.names() if name in present]


@dataclass
class Swarm:
    nodes: list[PrivateDockerd]
    image: str  # the EE by its reference in the registry
    registry: reg.Registry

    @property
    def manager(self) -> PrivateDockerd:
        return self.nodes[0]

    def on(self, node: PrivateDockerd, *args: str) -> str:
        done = subprocess.run(node.client(*args), capture_output=True, text=True, check=True)
        return done.stdout

    def options(self) -> dict[str, Any]:
        registry = self.registry
        auth = {"host": registry.host, "username": registry.username, "password": registry.password}
        return {"engine_url": self.manager.host, "registry_auth": auth}

    def kwargs(self) -> dict[str, Any]:
        return {
            "scheduler": "swarm",
            "scheduler_options": self.options(),
            "container_image": self.image,
        }

    def ours(self) -> dict[str, list[str]]:
        """Our services and secrets on the manager, our containers on every node."""
        label = "label=containerrunner"
        found = {
            "services": self.on(self.manager, "service", "ls", "-q", "--filter", label).split(),
            "secrets": self.on(self.manager, "secret", "ls", "-q", "--filter", label).split(),
        }
        for i, node in enumerate(self.nodes):
            found[f"containers{i}"] = self.on(node, "ps", "-aq", "--filter", label).split()
        return found


def until(check: Callable[[], bool], limit: float = 60.0) -> bool:
    """Whether `check()` came true within `limit` seconds (asked every 0.5 s)."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (from /proc's parent pids)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        here = frontier.pop()
        children = [child for child, parent in parents.items() if parent == here]
        found += children
        frontier += children
    return found


def nothing_ours(swarm: Swarm) -> bool:
    return not any(swarm.ours().values())


@pytest.fixture(scope="module")
def swarm(request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]) -> Iterator[Swarm]:
    require_engine(request, engine_probes, "docker")
    why = netns.available()
    if why is not None:
        _unavailable(request, why)
    missing = reg.missing_tools()
    if missing:
        _unavailable(request, f"the swarm's registry needs {', '.join(missing)}")
    network = SwarmNetwork(f"crsw{os.getpid() % 100000}", 2)
    nodes: list[PrivateDockerd] = []
    stack = contextlib.ExitStack()
    try:
        network.create()
        registry_cm = contextlib.contextmanager(reg.running_registry)
        server, _proc = stack.enter_context(registry_cm(PASSWORD, HUB_ADDRESS, network.hub))
        with ThreadPoolExecutor(2) as pool:
            made = [
                pool.submit(
                    PrivateDockerd,
                    EE_IMAGE if i == 0 else None,  # node 2 pulls it from the registry
                    netns=network.node(i),
                    hostname=f"cr-node{i + 1}",
                )
                for i in range(network.count)
            ]
            failures = [f.exception() for f in made if f.exception() is not None]
            nodes = [f.result() for f in made if f.exception() is None]
        if failures:
            raise RuntimeError(f"a swarm node's dockerd did not start: {failures[0]}")
        manager_addr = network.address(0)
        init = [
            "swarm", "init", "--advertise-addr", manager_addr,
            "--listen-addr", f"{manager_addr}:2377",
        ]  # fmt: skip
        subprocess.run(nodes[0].client(*init), check=True, capture_output=True)
        token = subprocess.run(
            nodes[0].client("swarm", "join-token", "-q", "worker"),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        join = [
            "swarm", "join", "--token", token, "--advertise-addr", network.address(1),
            "--listen-addr", f"{network.address(1)}:2377", f"{manager_addr}:2377",
        ]  # fmt: skip
        subprocess.run(nodes[1].client(*join), check=True, capture_output=True)
        image = server.ref("cr-test/ee:swarm")
        began = time.monotonic()
        reg.push(nodes[0].client(), EE_IMAGE, image, server)
        print(f"EE pushed to the swarm's registry in {time.monotonic() - began:.1f} s")
        yield Swarm(nodes, image, server)
    finally:
        for node in nodes:
            node.close()
        stack.close()
        network.delete()
    assert not network.left(), f"namespaces left: {network.left()}"
    assert not any(node.processes() for node in nodes), "a swarm node left processes"


def test_demo_on_swarm_same_events_and_stats_as_local(swarm: Swarm, tmp_path: Path) -> None:
    local_dir, swarm_dir = tmp_path / "local", tmp_path / "swarm"
    shutil.copytree(DEMO, local_dir)
    shutil.copytree(DEMO, swarm_dir)
    began = time.monotonic()
    local = containerrunner.run(
        private_data_dir=str(local_dir),
        playbook="site.yml",
        process_isolation=True,
        process_isolation_executable="docker",
        container_image=EE_IMAGE,
        container_transport="stream",
    )
    local_seconds = time.monotonic() - began
    began = time.monotonic()
    on_swarm = containerrunner.run(
        private_data_dir=str(swarm_dir), playbook="site.yml", **swarm.kwargs()
    )
    swarm_seconds = time.monotonic() - began
    print(f"demo: local stream {local_seconds:.1f} s, swarm {swarm_seconds:.1f} s")
    assert (local.status, local.rc) == ("successful", 0)
    assert (on_swarm.status, on_swarm.rc) == ("successful", 0), on_swarm.stdout.read()
    assert on_swarm.stats == local.stats
    # the same events (the hosts' events of one task come in the order the forks end)
    assert sorted(e["event"] for e in on_swarm.events) == sorted(e["event"] for e in local.events)
    record = json.loads((Path(on_swarm.artifact_dir) / "scheduler.json").read_text())
    assert record["node"] in ("cr-node1", "cr-node2")
    assert until(lambda: nothing_ours(swarm)), swarm.ours()


def _quick_job(tmp_path: Path, name: str, swarm: Swarm) -> dict[str, Any]:
    pdd = tmp_path / name
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "inventory" / "hosts").write_text(LOCALHOST)
    return {
        "private_data_dir": str(pdd),
        "host_pattern": "localhost",
        "module": "command",
        "module_args": "true",
        **swarm.kwargs(),
    }


def test_group_of_six_spreads_over_both_nodes(swarm: Swarm, tmp_path: Path) -> None:
    jobs = [_quick_job(tmp_path, f"job{i}", swarm) for i in range(6)]
    began = time.monotonic()
    results = containerrunner.run_group(jobs, max_parallel=6)
    seconds = time.monotonic() - began
    print(f"group: 6 jobs in {seconds:.1f} s on 2 nodes ({6 * 60 / seconds:.1f} jobs/minute)")
    assert [r.status for r in results] == ["successful"] * 6, [r.error for r in results]
    nodes = {r.node for r in results}
    assert nodes == {"cr-node1", "cr-node2"}, [r.node for r in results]
    # node 2 was given no image: it pulled the EE from the registry with the job's auth
    # (the swarm pins the image by digest: node 2 holds it untagged, under the repository)
    held = swarm.on(swarm.nodes[1], "image", "ls", "--format", "{{.Repository}}").split()
    assert swarm.image.rsplit(":", 1)[0] in held, held
    assert until(lambda: nothing_ours(swarm)), swarm.ours()


def test_the_registry_password_reaches_no_file_and_no_output(swarm: Swarm, tmp_path: Path) -> None:
    before = temp_entries()
    job = _quick_job(tmp_path, "auth", swarm)
    result = containerrunner.run(**job)
    assert result.status == "successful", result.stdout.read()
    output = result.stdout.read() + result.stderr.read() + json.dumps(list(result.events))
    assert swarm.registry.password not in output
    roots = [Path(job["private_data_dir"]), *new_in_temp(before, tmp_path)]
    docker_config = Path.home() / ".docker"
    if docker_config.is_dir():
        roots.append(docker_config)
    found = files_containing(swarm.registry.password, *roots)
    assert not found, f"the registry password is in {found}"
    assert until(lambda: nothing_ours(swarm)), swarm.ours()


SLEEPER = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: sleep
      command: sleep 300
"""


def _sleeper(tmp_path: Path) -> Path:
    pdd = tmp_path / "sleeper"
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "project").mkdir()
    (pdd / "inventory" / "hosts").write_text(LOCALHOST)
    (pdd / "project" / "sleep.yml").write_text(SLEEPER)
    return pdd


def test_cancel_leaves_nothing_on_any_node(swarm: Swarm, tmp_path: Path) -> None:
    started = threading.Event()

    def on_event(event: dict[str, Any]) -> bool:
        if event.get("event") == "runner_on_start":
            started.set()
        return True

    thread, runner = containerrunner.run_async(
        private_data_dir=str(_sleeper(tmp_path)),
        playbook="sleep.yml",
        event_handler=on_event,
        **swarm.kwargs(),
    )
    assert started.wait(120), runner.stdout.read()
    assert swarm.ours()["services"]
    runner.cancel()
    thread.join(120)
    assert runner.status == "canceled"
    assert until(lambda: nothing_ours(swarm)), swarm.ours()


CALLER = textwrap.dedent(
    """
    import json, sys, containerrunner
    def on_event(event):
        if event.get("event") == "runner_on_start":
            print("started", flush=True)
        return True
    r = containerrunner.run(private_data_dir=sys.argv[1], playbook="sleep.yml",
        event_handler=on_event, scheduler="swarm", quiet=True,
        scheduler_options=json.loads(sys.argv[2]), container_image=sys.argv[3])
    print("ended", r.status, r.rc, r.stdout.read(), r.stderr.read(), flush=True)
    """
)


def test_killed_caller_service_reaped_by_next_call(swarm: Swarm, tmp_path: Path) -> None:
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CALLER,
            str(_sleeper(tmp_path)),
            json.dumps(swarm.options()),
            swarm.image,
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert caller.stdout is not None
        assert caller.stdout.readline().strip() == "started", caller.stdout.read()
    finally:
        # the caller and its relay (its group), and the adapter (a session of its own)
        family = descendants(caller.pid)
        os.killpg(caller.pid, signal.SIGKILL)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        caller.wait()
    assert swarm.ours()["services"], "the killed caller's service should still be there"
    next_call = containerrunner.run(**_quick_job(tmp_path, "next", swarm))
    assert next_call.status == "successful"
    assert until(lambda: nothing_ours(swarm)), swarm.ours()
