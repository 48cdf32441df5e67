"""containerrunner.stream over small local processes (no containers): the items, their order,
the decisions on a timeout. Children block on a FIFO the test writes, never on a sleep."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import containerrunner
from containerrunner import Event, Exited, IdleTimeout, Output, Status, TotalTimeout
from containerrunner.errors import ConfigurationError
from containerrunner.streams import Item, JobStream
from containerrunner.testing import FakeRuns, playbook_events


def command_stream(code: str, **kwargs: object) -> JobStream:
    return containerrunner.stream(sys.executable, ["-u", "-c", code], **kwargs)


def wait_line(fifo: Path) -> str:
    """Python code: block until the test writes a line to `fifo`."""
    return f"open({str(fifo)!r}).readline()"


def release(fifo: Path) -> None:
    with open(fifo, "w") as fh:
        fh.write("go\n")


def test_a_chatty_command_gives_its_items_in_order() -> None:
    code = (
        "import sys\nfor i in range(3):\n    print('out', i)\n    print('err', i, file=sys.stderr)"
    )
    with command_stream(code) as s:
        items = list(s)
    statuses = [item.status for item in items if isinstance(item, Status)]
    assert statuses == ["starting", "running", "successful"]
    out = b"".join(i.data for i in items if isinstance(i, Output) and i.stream == "stdout")
    err = b"".join(i.data for i in items if isinstance(i, Output) and i.stream == "stderr")
    assert out == b"out 0\nout 1\nout 2\n"
    assert err == b"err 0\nerr 1\nerr 2\n"
    # every line is also a verbose event, as ansible-runner gives them
    assert sorted(i.data["stdout"] for i in items if isinstance(i, Event)) == sorted(
        [f"out {n}" for n in range(3)] + [f"err {n}" for n in range(3)]
    )
    assert items[-1] == Exited(rc=0, status="successful", reason="rc 0", stopped="")
    assert s.runner.rc == 0


def test_keep_waiting_after_an_idle_timeout_lets_the_job_finish(tmp_path: Path) -> None:
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    code = f"print('waiting'); {wait_line(fifo)}; print('done')"
    seen: list[Item] = []
    with command_stream(code, idle_timeout=0.2) as s:
        for item in s:
            seen.append(item)
            if isinstance(item, IdleTimeout):
                s.keep_waiting()
                release(fifo)
    timeouts = [i for i in seen if isinstance(i, IdleTimeout)]
    assert timeouts and timeouts[0].seconds == 0.2
    out = b"".join(i.data for i in seen if isinstance(i, Output))
    assert out == b"waiting\ndone\n"
    assert seen[-1] == Exited(rc=0, status="successful", reason="rc 0", stopped="")


def test_no_decision_applies_the_job_policy(tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    with command_stream(f"print('up'); {wait_line(fifo)}", idle_timeout=0.2) as s:
        items = list(s)
    assert sum(isinstance(i, IdleTimeout) for i in items) == 1
    exited = items[-1]
    assert isinstance(exited, Exited)
    assert (exited.status, exited.rc) == ("timeout", 254)
    assert exited.reason == "idle timeout: no output for 0.2s"
    assert exited.stopped == "terminated"  # python ends on SIGTERM


def test_terminate_escalates_to_sigkill_after_the_grace(tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    code = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('got TERM', flush=True))\n"
        f"print('up')\nwhile True:\n    {wait_line(fifo)}"
    )
    with command_stream(code, idle_timeout=0.2) as s:
        items: list[Item] = []
        for item in s:
            items.append(item)
            if isinstance(item, IdleTimeout):
                s.terminate(grace=0.5)
    assert b"got TERM" in b"".join(i.data for i in items if isinstance(i, Output))
    assert items[-1] == Exited(
        rc=254, status="timeout", reason="idle timeout: no output for 0.2s", stopped="killed"
    )


def test_kill_stops_at_once_without_sigterm(tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    code = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('got TERM', flush=True))\n"
        f"print('up')\n{wait_line(fifo)}"
    )
    with command_stream(code, timeout=0.3, termination_grace=60) as s:
        items: list[Item] = []
        for item in s:
            items.append(item)
            if isinstance(item, TotalTimeout):
                s.kill()
    assert b"got TERM" not in b"".join(i.data for i in items if isinstance(i, Output))
    exited = items[-1]
    assert isinstance(exited, Exited)
    assert (exited.status, exited.stopped) == ("timeout", "killed")


def test_terminate_without_a_timeout_cancels(tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    with command_stream(f"print('up'); {wait_line(fifo)}") as s:
        for item in s:
            if isinstance(item, Output):
                s.terminate()
        assert s.runner.status == "canceled"
    assert isinstance(item, Exited) and (item.status, item.rc) == ("canceled", 254)


def test_leaving_the_block_stops_the_job(tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    with command_stream(f"print('up'); {wait_line(fifo)}") as s:
        for item in s:
            if isinstance(item, Output):
                break
    assert s.runner.status == "canceled"


def test_keep_waiting_needs_a_pending_timeout() -> None:
    with command_stream("print('x')") as s:
        with pytest.raises(RuntimeError, match="no IdleTimeout or TotalTimeout is pending"):
            s.keep_waiting()
        with pytest.raises(ConfigurationError, match="positive number"):
            s.keep_waiting(-1)
        with pytest.raises(ConfigurationError, match="grace"):
            s.terminate(grace=-2)
        list(s)


def test_bad_arguments_raise_before_anything_runs() -> None:
    with pytest.raises(ConfigurationError, match="unknown option"):
        containerrunner.stream("true", no_such_option=1)
    with pytest.raises(ConfigurationError, match="cmdline_args needs executable_cmd"):
        containerrunner.stream(cmdline_args=["x"])
    with pytest.raises(ConfigurationError, match="termination_grace"):
        containerrunner.stream("true", termination_grace=-1)


def test_a_job_that_cannot_start_raises_from_the_loop() -> None:
    with containerrunner.stream("no-such-program-anywhere") as s:
        statuses: list[str] = []
        with pytest.raises(ConfigurationError, match="no-such-program-anywhere"):
            for item in s:
                if isinstance(item, Status):
                    statuses.append(item.status)
    assert statuses == ["starting", "failed"]


def test_a_run_stream_gives_the_playbook_events(containerrunner_fake: FakeRuns) -> None:
    containerrunner_fake.script(
        events=playbook_events({"deploy": {"web1": "ok", "web2": "failed"}}), rc=2
    )
    play = {"hosts": "all", "gather_facts": False, "tasks": [{"name": "deploy", "ping": {}}]}
    with containerrunner.stream(playbook=[play], inventory="web1,web2,") as s:
        names = [item.name for item in s if isinstance(item, Event)]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert {"runner_on_ok", "runner_on_failed"} <= set(names)
    assert s.runner.stats is not None and s.runner.stats["failures"] == {"web2": 1}
    assert containerrunner_fake.calls[0].helper == "stream"
