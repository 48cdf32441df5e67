"""Shared test fixtures: engines probed once per session, markers applied automatically.

Engine tests take the `engine` fixture (parametrised over podman and docker) or `where`
(local, podman, docker). A test that uses one gets the `podman`/`docker` marker automatically.
An engine that does not answer makes its tests skip — or fail, with `--require-engines` or
CONTAINERRUNNER_REQUIRE_ENGINES=1 (scripts/test and CI set it: they install the engines).
"""

from __future__ import annotations

import gc
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from containerrunner.errors import EngineError
from containerrunner.isolation import podman_service
from containerrunner.isolation.engine import ENGINE_NAMES, Engine, detect_engine
from containerrunner.tempdirs import ours_in_tempdir, read_owner, services_in_tempdir
from tests import tempdir_check

EE_IMAGE = "localhost/containerrunner-ee:latest"
NETWORK_EE_IMAGE = "network-ee"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-engines",
        action="store_true",
        default=os.environ.get("CONTAINERRUNNER_REQUIRE_ENGINES", "") == "1",
        help="fail (instead of skip) engine tests whose engine or image is missing",
    )
    parser.addoption(
        "--load-jobs",
        type=int,
        default=int(os.environ.get("CONTAINERRUNNER_LOAD_JOBS", "50")),
        help="jobs the load test runs at once (default 50; CONTAINERRUNNER_LOAD_JOBS)",
    )
    parser.addoption(
        "--big-stdout-mib",
        type=int,
        default=int(os.environ.get("CONTAINERRUNNER_BIG_STDOUT_MIB", "256")),
        help="MiB the in-engine bounded-stdout test writes (default 256; the issue's 1024; "
        "CONTAINERRUNNER_BIG_STDOUT_MIB)",
    )
    parser.addoption(
        "--image-verify",
        action="store_true",
        default=os.environ.get("CONTAINERRUNNER_IMAGE_VERIFY", "") == "1",
        help="run the image_verify tests: build-images --verify, every image built twice from "
        "clean (tens of minutes; CONTAINERRUNNER_IMAGE_VERIFY=1)",
    )
    parser.addoption(
        "--fault-trials",
        type=int,
        default=int(os.environ.get("CONTAINERRUNNER_FAULT_TRIALS", "2")),
        help="repetitions of each fault trial (default 2; CONTAINERRUNNER_FAULT_TRIALS)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        for value in callspec.params.values():
            if isinstance(value, str) and value in ENGINE_NAMES:
                item.add_marker(getattr(pytest.mark, value))
                item.add_marker(pytest.mark.integration)


def left_in_tempdir(before: set[str]) -> list[str]:
    """The containerrunner dirs in the temp dir that are new since `before` and are nobody's
    running job: made by this process, by a process that is gone, or of unknown owner."""
    left = []
    for path in sorted(set(ours_in_tempdir()) - before):
        owner = read_owner(path)
        if owner is None or owner.pid == os.getpid() or owner.gone:
            left.append(path)
    return left


@pytest.fixture(scope="session", autouse=True)
def nothing_left_in_tempdir(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the whole session: nothing this run made is left in the temp dir.

    In a temp dir of the run's own (tests/tempdir_check.py: `is_private`, as scripts/test
    gives each pytest step), every new entry fails the session but those KNOWN lists with
    their owner and reason. In a shared one (/tmp) only this run's containerrunner dirs fail
    it; other new entries of this user are named in the terminal summary, unattributed.
    """
    root = tempfile.gettempdir()
    since = time.time()
    listed = tempdir_check.listing(root)
    before = set(ours_in_tempdir())
    yield
    gc.collect()
    podman_service.stop_private()  # as at exit: the private podman API service, if started
    services = [p for p in services_in_tempdir() if (o := read_owner(p)) and o.pid == os.getpid()]
    left = left_in_tempdir(before) + services
    assert not left, f"containerrunner dirs left in the temp dir by this test run: {left}"
    new = tempdir_check.new_entries(listed, tempdir_check.listing(root))
    if tempdir_check.is_private(root):
        names = [os.path.join(root, e.name) for e in new]
        assert not names, f"left in this run's temp dir by the test run: {names}"
    elif suspects := tempdir_check.shared_suspects(new, since):
        request.config.stash[_SHARED_SUSPECTS] = [os.path.join(root, e.name) for e in suspects]


_SHARED_SUSPECTS = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    suspects = config.stash.get(_SHARED_SUSPECTS, [])
    if suspects:
        terminalreporter.write_sep("-", "new in the shared temp dir (this run's or not)")
        for path in suspects:
            terminalreporter.write_line(path)
        terminalreporter.write_line(
            "a shared temp dir cannot tell; run with a TMPDIR of the run's own (scripts/test "
            "does) for the exact check"
        )


@dataclass
class EngineProbe:
    engine: Engine | None
    problem: str


@pytest.fixture(scope="session")
def engine_probes() -> dict[str, EngineProbe]:
    probes: dict[str, EngineProbe] = {}
    for name in ENGINE_NAMES:
        try:
            probes[name] = EngineProbe(detect_engine(name), "")
        except EngineError as exc:
            probes[name] = EngineProbe(None, str(exc))
    return probes


def _unavailable(request: pytest.FixtureRequest, message: str) -> None:
    if request.config.getoption("--require-engines"):
        pytest.fail(f"required engine missing: {message}", pytrace=False)
    pytest.skip(message)


def image_present(engine: Engine, image: str) -> bool:
    proc = subprocess.run(
        engine.command("image", "inspect", image),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return proc.returncode == 0


def require_engine(
    request: pytest.FixtureRequest,
    probes: dict[str, EngineProbe],
    name: str,
    image: str = EE_IMAGE,
) -> Engine:
    """The engine `name` with `image`; skips (or fails, with --require-engines) without."""
    probe = probes[name]
    if probe.engine is None:
        _unavailable(request, f"{name}: {probe.problem}")
        raise AssertionError("unreachable")
    if not image_present(probe.engine, image):
        _unavailable(request, f"{name}: image {image} missing; run scripts/build-images")
    return probe.engine


_engine = require_engine


@pytest.fixture(params=ENGINE_NAMES)
def engine(request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]) -> Engine:
    """A working engine with the project's EE image: podman, then docker."""
    return _engine(request, engine_probes, request.param)


@pytest.fixture(params=("local", *ENGINE_NAMES))
def where(request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]) -> dict[str, Any]:
    """Execution keyword arguments for running on the host, in podman and in docker."""
    if request.param == "local":
        return {"process_isolation": False}
    _engine(request, engine_probes, request.param)
    return {
        "process_isolation": True,
        "process_isolation_executable": request.param,
        "container_image": EE_IMAGE,
    }


def our_containers(engine: Engine, owner_pid: int | None = None) -> list[str]:
    """Names of containers (running or not) carrying containerrunner's label.

    With `owner_pid`, only those started by that process (label containerrunner.owner-pid).
    """
    label = "containerrunner" if owner_pid is None else f"containerrunner.owner-pid={owner_pid}"
    out = subprocess.run(
        engine.command("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def devices() -> Iterator[Any]:
    """Simulated network devices (tests/netsim.py, fakenos) on 127.0.0.1, one set per session;
    afterwards none of their ports answers."""
    from tests.netsim import SimulatedDevices

    with SimulatedDevices() as sim:
        yield sim
    assert sim.answering() == [], "simulated devices still answer after the session"


@pytest.fixture
def no_leftover_containers(engine: Engine) -> Iterator[Engine]:
    """Asserts after the test that no container this test process started is left."""
    before = set(our_containers(engine, os.getpid()))
    yield engine
    left = set(our_containers(engine, os.getpid())) - before
    assert not left, f"containers left behind in {engine.name}: {sorted(left)}"


@pytest.fixture
def both_engines(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]
) -> Iterator[dict[str, Engine]]:
    """podman and docker, each with the project's EE image; asserts after the test that no
    container this process started is left in either. A test using it carries both markers."""
    found = {name: _engine(request, engine_probes, name) for name in ENGINE_NAMES}
    before = {name: set(our_containers(e, os.getpid())) for name, e in found.items()}
    yield found
    for name, engine in found.items():
        left = set(our_containers(engine, os.getpid())) - before[name]
        assert not left, f"containers left behind in {name}: {sorted(left)}"
