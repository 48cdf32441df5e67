"""containerrunner.stream for real: on the host, in podman and in docker (the project's EE).

The children block on a FIFO in the job's cwd (mounted into the container at the same path)
until the test writes it, so a silence is made by the test, never by a sleep. After each test
no container of this process is left.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner import Event, Exited, IdleTimeout, Output, Status
from containerrunner.isolation.engine import Engine, make_engine
from containerrunner.streams import Item
from tests.conftest import our_containers
from tests.integration.support import container_kwargs, copy_examples


@pytest.fixture
def job(where: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """run_command kwargs for `where`, cwd tmp_path; no container left afterwards."""
    engine: Engine | None = None
    if where.get("process_isolation"):
        engine = make_engine(where["process_isolation_executable"])
    before = set(our_containers(engine, os.getpid())) if engine else set()
    yield {**where, "host_cwd": str(tmp_path)}
    if engine is not None:
        left = set(our_containers(engine, os.getpid())) - before
        assert not left, f"containers left behind in {engine.name}: {sorted(left)}"


def python(job: dict[str, Any]) -> str:
    return "python3" if job.get("process_isolation") else sys.executable


def fifo_in(tmp_path: Path, name: str = "go") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def release(fifo: Path) -> None:
    with open(fifo, "w") as fh:
        fh.write("go\n")


def output_of(items: list[Item], stream: str | None = None) -> bytes:
    return b"".join(i.data for i in items if isinstance(i, Output) and stream in (None, i.stream))


def test_a_chatty_command(job: dict[str, Any]) -> None:
    code = (
        "import sys\n"
        "for i in range(300):\n"
        "    print('line', i, flush=True)\n"
        "    print('err', i, file=sys.stderr, flush=True)\n"
    )
    with containerrunner.stream(python(job), ["-u", "-c", code], **job) as s:
        items = list(s)
    assert output_of(items, "stdout") == b"".join(b"line %d\n" % i for i in range(300))
    assert output_of(items, "stderr") == b"".join(b"err %d\n" % i for i in range(300))
    assert [i.status for i in items if isinstance(i, Status)] == [
        "starting",
        "running",
        "successful",
    ]
    assert items[-1] == Exited(rc=0, status="successful", reason="rc 0", stopped="")
    with s.runner.stdout as fh:  # the artifacts have the same output
        assert fh.read().count("line ") == 300


def test_a_silent_hanging_command_is_terminated_after_its_idle_timeout(
    job: dict[str, Any], tmp_path: Path
) -> None:
    fifo = fifo_in(tmp_path)
    code = f"print('up', flush=True); open({str(fifo)!r}).readline()"
    seen: list[Item] = []
    with containerrunner.stream(python(job), ["-c", code], idle_timeout=1, **job) as s:
        for item in s:
            seen.append(item)
            if isinstance(item, IdleTimeout):
                s.terminate(grace=10)
    assert sum(isinstance(i, IdleTimeout) for i in seen) == 1
    assert output_of(seen) == b"up\n"
    last = seen[-1]
    assert isinstance(last, Exited)
    assert (last.status, last.rc, last.stopped) == ("timeout", 254, "terminated")
    assert last.reason == "idle timeout: no output for 1s"


def test_a_command_ignoring_sigterm_gets_sigkill_after_the_grace(
    job: dict[str, Any], tmp_path: Path
) -> None:
    fifo = fifo_in(tmp_path)
    code = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('got TERM', flush=True))\n"
        "print('up', flush=True)\n"
        "while True:\n"
        f"    open({str(fifo)!r}).readline()\n"
    )
    seen: list[Item] = []
    with containerrunner.stream(python(job), ["-c", code], **job) as s:
        for item in s:
            seen.append(item)
            if isinstance(item, Output) and b"up" in item.data:
                s.terminate(grace=1)
    assert b"got TERM" in output_of(seen)  # SIGTERM came first ...
    last = seen[-1]
    assert isinstance(last, Exited)
    assert (last.status, last.rc, last.stopped) == ("canceled", 254, "killed")  # ... then KILL


def test_keep_waiting_after_an_idle_timeout_and_the_job_finishes(
    job: dict[str, Any], tmp_path: Path
) -> None:
    fifo = fifo_in(tmp_path)
    code = f"print('waiting', flush=True); open({str(fifo)!r}).readline(); print('done')"
    seen: list[Item] = []
    with containerrunner.stream(python(job), ["-c", code], idle_timeout=1, **job) as s:
        for item in s:
            seen.append(item)
            if isinstance(item, IdleTimeout):
                s.keep_waiting()
                release(fifo)
    assert any(isinstance(i, IdleTimeout) for i in seen)
    assert output_of(seen) == b"waiting\ndone\n"
    assert seen[-1] == Exited(rc=0, status="successful", reason="rc 0", stopped="")


def test_a_playbook_stream_gives_its_events(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    with containerrunner.stream(private_data_dir=str(pdd), playbook="site.yml", **where) as s:
        items = list(s)
    events = [i for i in items if isinstance(i, Event)]
    names = [e.name for e in events]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert [e.data["counter"] for e in events] == sorted(e.data["counter"] for e in events)
    assert s.runner.stats is not None and not s.runner.stats["failures"]
    assert items[-1] == Exited(rc=0, status="successful", reason="rc 0", stopped="")
    # the kept events are the job's events
    assert [e["uuid"] for e in s.runner.events] == [e.data["uuid"] for e in events]


# --- two-phase timeouts ----------------------------------------------------------------------


def test_a_start_timeout_shorter_than_the_container_start(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    runner = containerrunner.interface.command_runner(
        "true",
        None,
        {
            **container_kwargs(no_leftover_containers),
            "start_timeout": 0.1,
            "private_data_dir": str(tmp_path),
        },
        "run_command",
    )
    assert runner.run() == ("timeout", 254)
    assert runner.timed_out
    assert runner.reason.startswith("start timeout after 0.1s")
    assert "(start phase: " in runner.reason
    assert not our_containers(no_leftover_containers, os.getpid())


def test_with_a_start_timeout_the_job_runs_normally(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    fifo = fifo_in(tmp_path)
    code = f"print('up', flush=True); open({str(fifo)!r}).readline(); print('done')"
    kwargs = {**container_kwargs(no_leftover_containers), "host_cwd": str(tmp_path)}
    seen: list[Item] = []
    with containerrunner.stream(
        "python3", ["-c", code], start_timeout=120, idle_timeout=60, **kwargs
    ) as s:
        for item in s:
            seen.append(item)
            if isinstance(item, Output) and b"up" in item.data:
                release(fifo)
    assert output_of(seen) == b"up\ndone\n"
    assert seen[-1] == Exited(rc=0, status="successful", reason="rc 0", stopped="")
