"""Test doubles for code that calls containerrunner: no container, no engine, no Ansible.

Inside `fake_runs()` every helper (`run`, `run_command`, the utility helpers and their `_async`
twins) validates its arguments and goes through the real Runner lifecycle (statuses, handlers,
artifacts, events, `stats`, `task_results()`), but the process it would start is replaced by a
scripted one: each job takes the next `Script` (or a default successful one), "prints" its
stdout and stderr and sends its events. `fake.calls` records each helper call with its
arguments, `fake.jobs` the command each job would have run::

    from containerrunner.testing import fake_runs, playbook_events

    def test_deploy_reports_the_failed_host():
        with fake_runs() as fake:
            fake.script(rc=2, events=playbook_events({"install": {"web1": "ok", "web2": "failed"}}))
            assert mymodule.deploy("site.yml") == ["web2"]     # calls containerrunner.run(...)
        assert fake.calls[0].arguments["playbook"] == "site.yml"

With pytest, the `containerrunner_fake` fixture (this module is a pytest plugin) is the same
object, installed for the test. Fakes do not nest: one at a time per process.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from containerrunner import interface
from containerrunner.isolation.types import Invocation
from containerrunner.joboutput import OUTPUT_MARK
from containerrunner.process import ProcessControls, ProcessResult
from containerrunner.runner import Runner

__all__ = ["Call", "FakeRuns", "Job", "Script", "fake_runs", "playbook_events"]

FAKE_PID = 4242
OUTCOME_EVENTS = {
    "ok": "runner_on_ok",
    "changed": "runner_on_ok",
    "failed": "runner_on_failed",
    "ignored": "runner_on_failed",
    "skipped": "runner_on_skipped",
    "unreachable": "runner_on_unreachable",
}


@dataclass(frozen=True)
class Script:
    """What one faked job does: its output, its events, how it ends.

    `status` `timeout` or `canceled` ends it so (rc 254, as a real stopped job); otherwise it
    ends `successful` when `rc` is 0, else `failed`. `events` are dicts in ansible-runner's
    schema (`playbook_events()` makes a realistic list); missing `counter`, `uuid`, `stdout`,
    `start_line` and `end_line` are filled in. They reach the caller only for jobs that have
    events (`run()`, `run_command` of ansible-playbook/ansible), as real ones would.
    """

    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    events: Sequence[Mapping[str, Any]] = ()
    status: str | None = None


@dataclass(frozen=True)
class Call:
    """A helper call: its name (`run`, `get_inventory_async`, ...) and arguments by name."""

    helper: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """A job that would have run: its command (the Ansible command line; a container job's
    engine argv is not built), working dir and environment variable names."""

    command: tuple[str, ...]
    cwd: str
    env_names: frozenset[str]
    script: Script


@dataclass
class FakeRuns:
    """The installed fake: queue scripts with `script()`, read `calls` and `jobs`."""

    calls: list[Call] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    default: Script = field(default_factory=Script)
    _queue: list[Script] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, **kwargs: Any) -> Script:
        """Queue what the next job does (`Script`'s fields); jobs take scripts in order."""
        script = Script(**kwargs)
        with self._lock:
            self._queue.append(script)
        return script

    def _next(self) -> Script:
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default

    def _observe(self, helper: str, arguments: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(Call(helper, arguments))

    def _process(self, inv: Invocation, controls: ProcessControls) -> ProcessResult:
        script = self._next()
        with self._lock:
            self.jobs.append(Job(tuple(inv.argv), inv.cwd, frozenset(inv.env), script))
        if controls.on_start is not None:
            controls.on_start(FAKE_PID)
        fifo = inv.env.get("CONTAINERRUNNER_EVENT_FIFO")
        if fifo and script.events:
            for sink in (controls.stdout, controls.stderr):
                if sink is not None:
                    sink(OUTPUT_MARK)  # as the callback plugin does when it loads
            with open(fifo, "w", encoding="utf-8") as stream:
                for event in _numbered(script.events, inv.env.get("CONTAINERRUNNER_IDENT", "")):
                    stream.write(json.dumps(event) + "\n")
        if script.stdout and controls.stdout is not None:
            controls.stdout(script.stdout)
        if script.stderr and controls.stderr is not None:
            controls.stderr(script.stderr)
        if script.status in ("timeout", "canceled"):
            return ProcessResult(rc=-15, outcome=script.status, reason=f"scripted {script.status}")  # type: ignore[arg-type]
        if script.rc == 0:
            return ProcessResult(rc=0, outcome="successful", reason="rc 0")
        return ProcessResult(rc=script.rc, outcome="failed", reason=f"rc {script.rc}")


def _numbered(events: Sequence[Mapping[str, Any]], ident: str) -> Iterator[dict[str, Any]]:
    line = 0
    for counter, given in enumerate(events, 1):
        event = {"counter": counter, "uuid": str(uuid.uuid4()), "stdout": "", **given}
        lines = str(event["stdout"]).count("\n") + (1 if event["stdout"] else 0)
        event.setdefault("start_line", line)
        event.setdefault("end_line", line + lines)
        event.setdefault("runner_ident", ident)
        event.setdefault("event_data", {})
        line = int(event["end_line"])
        yield event


_INSTALLED: list[FakeRuns] = []


@contextlib.contextmanager
def fake_runs() -> Iterator[FakeRuns]:
    """Install a fake for the `with` block; every helper call in it runs a scripted job."""
    if _INSTALLED:
        raise RuntimeError("containerrunner.testing: a fake is already installed")
    fake = FakeRuns()
    # Saved from the class dict: `Runner.process_runner` would give the function without its
    # staticmethod, and putting that back would make it a method (called with the Runner).
    names = ("process_runner", "engine_resolver", "program_resolver")
    saved = {name: Runner.__dict__[name] for name in names}
    Runner.process_runner = staticmethod(fake._process)
    Runner.engine_resolver = staticmethod(lambda job: (None, None))
    Runner.program_resolver = staticmethod(lambda command, env: command)
    interface.CALL_OBSERVERS.append(fake._observe)
    _INSTALLED.append(fake)
    try:
        yield fake
    finally:
        _INSTALLED.remove(fake)
        interface.CALL_OBSERVERS.remove(fake._observe)
        for name, value in saved.items():
            setattr(Runner, name, value)


def playbook_events(
    tasks: Mapping[str, Mapping[str, str]], play: str = "play", playbook: str = "site.yml"
) -> list[dict[str, Any]]:
    """A realistic event list for one play: `{task: {host: outcome}}` in order, outcome one of
    ok, changed, failed, ignored, skipped, unreachable; ends with the stats event (the recap
    counted from the outcomes, as Ansible counts it)."""
    playbook_uuid, play_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    base = {"playbook": playbook, "playbook_uuid": playbook_uuid}
    in_play = {**base, "play": play, "play_uuid": play_uuid}
    events: list[dict[str, Any]] = [
        {"event": "playbook_on_start", "event_data": dict(base)},
        {"event": "playbook_on_play_start", "uuid": play_uuid,
         "event_data": {**in_play, "name": play}},
    ]  # fmt: skip
    recap: dict[str, dict[str, int]] = {
        key: {} for key in ("ok", "changed", "failures", "dark", "skipped", "ignored", "rescued",
                            "processed")
    }  # fmt: skip
    for task, hosts in tasks.items():
        task_uuid = str(uuid.uuid4())
        in_task = {**in_play, "task": task, "task_uuid": task_uuid, "task_path": f"{playbook}:1"}
        events.append({"event": "playbook_on_task_start", "uuid": task_uuid, "event_data": in_task})
        for host, outcome in hosts.items():
            if outcome not in OUTCOME_EVENTS:
                raise ValueError(
                    f"outcome {outcome!r} of {host} in {task!r}: one of {sorted(OUTCOME_EVENTS)}"
                )
            res: dict[str, Any] = {"changed": outcome == "changed"}
            if outcome in ("failed", "ignored", "unreachable"):
                res["msg"] = f"{task} {outcome} on {host}"
            data: dict[str, Any] = {**in_task, "host": host, "res": res}
            if outcome in ("failed", "ignored"):
                data["ignore_errors"] = outcome == "ignored"
            events.append({"event": OUTCOME_EVENTS[outcome], "event_data": data})
            for key in _recap_keys(outcome):
                recap[key][host] = recap[key].get(host, 0) + 1
            recap["processed"][host] = 1
    events.append({"event": "playbook_on_stats", "event_data": {**base, **recap}})
    return events


def _recap_keys(outcome: str) -> tuple[str, ...]:
    return {
        "ok": ("ok",),
        "changed": ("ok", "changed"),
        "failed": ("failures",),
        "ignored": ("ok", "ignored"),
        "skipped": ("skipped",),
        "unreachable": ("dark",),
    }[outcome]


try:  # a pytest plugin too (entry point pytest11): the `containerrunner_fake` fixture
    import pytest
except ImportError:  # pragma: no cover - the context manager needs no pytest
    pass
else:

    @pytest.fixture
    def containerrunner_fake() -> Iterator[FakeRuns]:
        """containerrunner's helpers run scripted jobs for this test (see fake_runs)."""
        with fake_runs() as fake:
            yield fake
