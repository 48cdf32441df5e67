"""The Runner's lifecycle with a fake process backend: statuses, rc, handlers, events, the
artifacts claim and the temp dirs, on success, cancel, timeout, errors and a failed start."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from containerrunner.artifacts import ArtifactDir
from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ConfigurationError
from containerrunner.isolation.types import Invocation
from containerrunner.job import Job
from containerrunner.joboutput import OUTPUT_MARK
from containerrunner.process import ProcessControls, ProcessResult
from containerrunner.runner import Runner
from containerrunner.tempdirs import (
    Owner,
    ours_in_tempdir,
    runtime_dir_path,
    temporary_data_dir_path,
    write_owner,
)

Fake = Callable[[Invocation, ProcessControls], ProcessResult]


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    assert ours_in_tempdir() == [], "a temp dir was left behind"


def make_job(tmp_path: Path, ident: str = "job1", temporary: bool = False, **kw: Any) -> Job:
    temporary_dir = temporary_data_dir_path() if temporary else None
    base = os.path.join(temporary_dir, "artifacts") if temporary_dir else str(tmp_path / "art")
    kw.setdefault("execution", ExecutionOptions(host_cwd=str(tmp_path)))
    return Job(
        command=(sys.executable, "-c", "pass"),
        ident=ident,
        artifact_base=base,
        runtime_dir=runtime_dir_path(ident),
        temporary_dir=temporary_dir,
        **kw,
    )


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.finished: list[Runner] = []
        self.artifacts: list[str] = []

    def handlers(self) -> dict[str, Any]:
        return {
            "status_handler": lambda data, config: self.statuses.append(data["status"]),
            "finished_callback": self.finished.append,
            "artifacts_handler": self.artifacts.append,
        }


def runner_for(job: Job, fake: Fake, recorder: Recorder | None = None, **kw: Any) -> Runner:
    runner = Runner(SimpleNamespace(job=job), **(recorder.handlers() if recorder else {}), **kw)
    runner.process_runner = fake  # type: ignore[method-assign, assignment]
    return runner


def ends(outcome: str, rc: int, output: str = "out\n") -> Fake:
    def fake(inv: Invocation, controls: ProcessControls) -> ProcessResult:
        assert controls.on_start is not None and controls.stdout is not None
        controls.on_start(4711)
        controls.stdout(output)
        return ProcessResult(rc=rc, outcome=outcome, reason="")  # type: ignore[arg-type]

    return fake


def test_success_tells_every_handler_and_cleans_up(tmp_path: Path) -> None:
    rec = Recorder()
    job = make_job(tmp_path)
    runner = runner_for(job, ends("successful", 0), rec)
    assert runner.run() == ("successful", 0)
    assert rec.statuses == ["starting", "running", "successful"]
    assert rec.finished == [runner] and rec.artifacts == [runner.artifact_dir]
    assert runner.stdout.read() == "out\n"
    art = Path(runner.artifact_dir)
    assert (art / "status").read_text() == "successful" and (art / "rc").read_text() == "0"
    assert not os.path.exists(job.runtime_dir)
    assert not (art / ".containerrunner-owner").exists()


@pytest.mark.parametrize("outcome", ["canceled", "timeout"])
def test_a_stopped_job_ends_with_rc_254(tmp_path: Path, outcome: str) -> None:
    rec = Recorder()
    runner = runner_for(make_job(tmp_path), ends(outcome, -15), rec)
    assert runner.run() == (outcome, 254)
    assert rec.statuses[-1] == outcome and rec.finished == [runner]


def test_an_exception_ends_the_job_failed_and_still_tells_the_handlers(tmp_path: Path) -> None:
    def fake(inv: Invocation, controls: ProcessControls) -> ProcessResult:
        raise RuntimeError("backend broke")

    rec = Recorder()
    job = make_job(tmp_path, temporary=True)
    runner = runner_for(job, fake, rec)
    with pytest.raises(RuntimeError, match="backend broke"):
        runner.run()
    assert (runner.status, runner.rc) == ("failed", 254) and rec.statuses[-1] == "failed"
    assert rec.finished == [runner]
    assert list(runner.events) == []
    assert not os.path.exists(job.runtime_dir) and not os.path.exists(str(job.temporary_dir))


def test_a_handler_error_during_a_failure_is_a_note_not_a_replacement(tmp_path: Path) -> None:
    def fake(inv: Invocation, controls: ProcessControls) -> ProcessResult:
        raise RuntimeError("backend broke")

    def finished(runner: Runner) -> None:
        raise ValueError("callback broke too")

    runner = runner_for(make_job(tmp_path), fake, finished_callback=finished)
    with pytest.raises(RuntimeError, match="backend broke") as info:
        runner.run()
    assert any("callback broke too" in note for note in info.value.__notes__)


def test_a_temporary_dir_is_gone_at_the_end_and_its_output_kept(tmp_path: Path) -> None:
    job = make_job(tmp_path, temporary=True)
    runner = runner_for(job, ends("failed", 2, "partial output\n"))
    assert runner.run() == ("failed", 2)
    assert not os.path.exists(str(job.temporary_dir))
    assert runner.stdout.read() == "partial output\n" and runner.stderr.read() == ""


def test_reusing_an_ident_replaces_its_artifacts_but_keeps_the_fact_cache(tmp_path: Path) -> None:
    job = make_job(tmp_path, ident="again")
    first = runner_for(job, ends("failed", 1, "first\n"))
    first.run()
    art = ArtifactDir(job.artifact_base, job.ident)
    (art.job_events / "1-old.json").write_text("{}")
    art.set_fact_cache("web1", {"a": 1})
    second = runner_for(job, ends("successful", 0, "second\n"))
    assert second.run() == ("successful", 0)
    assert second.stdout.read() == "second\n"
    # the old event file is gone; the one there is the new run's output line (a verbose event)
    [event] = [json.loads(p.read_text()) for p in art.job_events.iterdir()]
    assert (event["event"], event["stdout"], event["counter"]) == ("verbose", "second", 1)
    assert art.get_fact_cache("web1") == {"a": 1}


def test_an_ident_in_use_is_refused_and_earlier_artifacts_stay(tmp_path: Path) -> None:
    job = make_job(tmp_path, ident="busy")
    runner_for(job, ends("successful", 0, "earlier\n")).run()
    art = ArtifactDir(job.artifact_base, job.ident)
    before = {p.name: p.read_bytes() for p in art.path.iterdir() if p.is_file()}
    write_owner(art.path, Owner.current())  # as a running job of this process: "busy" runs
    try:
        rec = Recorder()
        runner = runner_for(job, ends("successful", 0), rec)
        with pytest.raises(ConfigurationError, match=r"'busy'.*still running"):
            runner.run()
        assert rec.statuses == ["starting", "failed"] and rec.finished == [runner]
        assert runner.rc == 254  # never None: a caller exiting with rc must not exit 0
        assert list(runner.events) == []
    finally:
        art.release()
    after = {p.name: p.read_bytes() for p in art.path.iterdir() if p.is_file()}
    assert after == before


def test_events_are_kept_only_when_the_handler_returns_true(tmp_path: Path) -> None:
    """The real FIFO path: the fake process prints a line before the plugin's mark and sends
    the plugin's events on the FIFO. The line becomes verbose event 1; the plugin's events
    follow it; only what the handler returned True for is kept and written."""

    def fake(inv: Invocation, controls: ProcessControls) -> ProcessResult:
        assert controls.stdout is not None and controls.stderr is not None
        assert inv.env["CONTAINERRUNNER_MARK_OUTPUT"] == "1"
        controls.stdout("[WARNING]: no inventory\n" + OUTPUT_MARK)
        controls.stderr(OUTPUT_MARK)
        with open(inv.env["CONTAINERRUNNER_EVENT_FIFO"], "w") as fifo:
            for counter, name in enumerate(["playbook_on_start", "verbose", "runner_on_ok"], 1):
                event = {"counter": counter, "uuid": f"u{counter}", "event": name}
                event.update(start_line=counter - 1, end_line=counter)
                fifo.write(json.dumps(event) + "\n")
        return ProcessResult(rc=0, outcome="successful", reason="")

    seen: list[tuple[int, str, int]] = []

    def handler(event: dict[str, Any]) -> Any:
        seen.append((event["counter"], event["event"], event["start_line"]))
        return {1: True, 2: True, 3: None, 4: 1}[event["counter"]]  # only True keeps

    job = make_job(tmp_path, events=True)
    runner = runner_for(job, fake, event_handler=handler)
    runner.run()
    assert seen == [(1, "verbose", 0), (2, "playbook_on_start", 1), (3, "verbose", 2),
                    (4, "runner_on_ok", 3)]  # fmt: skip
    assert [e["counter"] for e in runner.events] == [1, 2]
    names = sorted(os.listdir(Path(runner.artifact_dir) / "job_events"))
    assert len(names) == 2 and names[0].startswith("1-") and names[1] == "2-u1.json"
    assert runner.stdout.read() == "[WARNING]: no inventory\n"  # the marks are removed


def test_a_runner_that_never_started_has_no_events(tmp_path: Path) -> None:
    runner = runner_for(make_job(tmp_path), ends("successful", 0))
    assert list(runner.events) == []
    assert runner.status == "unstarted"


def test_start_runs_in_a_non_daemon_thread_and_readers_wait(tmp_path: Path) -> None:
    runner = runner_for(make_job(tmp_path, temporary=True), ends("successful", 0))
    thread = runner.start()
    assert not thread.daemon
    # waited for the end, did not return early: the output line is a verbose event
    assert [e["stdout"] for e in runner.events] == ["out"]
    thread.join(30)
    assert runner.status == "successful"


def env_of_the_job(job: Job) -> tuple[dict[str, str], str | None]:
    """The environment a fake process got, and what its temp dir held while it ran."""
    seen: dict[str, Any] = {}

    def fake(inv: Invocation, controls: ProcessControls) -> ProcessResult:
        seen["env"] = dict(inv.env)
        tmp = os.path.join(job.runtime_dir, "tmp")
        seen["tmp"] = oct(os.stat(tmp).st_mode & 0o777) if os.path.isdir(tmp) else None
        return ProcessResult(rc=0, outcome="successful", reason="")

    runner_for(job, fake).run()
    return seen["env"], seen["tmp"]


def test_a_host_jobs_temp_files_go_to_its_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_LOCAL_TEMP", raising=False)
    job = make_job(tmp_path)
    env, mode = env_of_the_job(job)
    tmp = os.path.join(job.runtime_dir, "tmp")
    assert (env["TMPDIR"], env["ANSIBLE_LOCAL_TEMP"], mode) == (tmp, tmp, "0o700")
    assert not os.path.exists(job.runtime_dir)  # removed with it


def test_the_users_temp_settings_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", "/not/for/the/job")  # only where the runtime dir is made
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", "/exported/by/the/user")
    execution = ExecutionOptions(host_cwd=str(tmp_path), envvars={"TMPDIR": "/given"})
    env, _mode = env_of_the_job(make_job(tmp_path, execution=execution))
    assert (env["TMPDIR"], env["ANSIBLE_LOCAL_TEMP"]) == ("/given", "/exported/by/the/user")
    execution = ExecutionOptions(host_cwd=str(tmp_path), envvars={"ANSIBLE_LOCAL_TEMP": "/a"})
    monkeypatch.delenv("ANSIBLE_LOCAL_TEMP")
    job = make_job(tmp_path, execution=execution)
    env, mode = env_of_the_job(job)
    assert (env["TMPDIR"], env["ANSIBLE_LOCAL_TEMP"]) == (f"{job.runtime_dir}/tmp", "/a")
    assert mode == "0o700"


def lines_seeing_files(runner: Runner) -> tuple[Fake, list[list[str]]]:
    """A fake printing three lines, and what job_events/ held as each line's event came."""
    seen: list[list[str]] = []

    def handler(event: dict[str, Any]) -> bool:
        folder = Path(runner.artifact_dir, "job_events")
        seen.append(sorted(p.name for p in folder.iterdir()) if folder.exists() else [])
        return True

    runner.event_handler = handler
    return ends("successful", 0, "one\ntwo\nthree\n"), seen


@pytest.mark.parametrize("unobserved", [True, False])
def test_an_unobserved_temporary_job_keeps_its_events_in_memory_only(
    tmp_path: Path, unobserved: bool
) -> None:
    """A synchronous helper's Runner (never handed out, `unobserved`) with a temporary dir
    writes no job_events file; the events are all there, and every other job writes them."""
    runner = runner_for(make_job(tmp_path, temporary=True), ends("successful", 0))
    runner.unobserved = unobserved
    fake, seen = lines_seeing_files(runner)
    runner.process_runner = fake  # type: ignore[method-assign, assignment]
    assert runner.run() == ("successful", 0)
    assert [e["stdout"] for e in runner.events] == ["one", "two", "three"]
    assert [len(names) for names in seen] == ([0, 0, 0] if unobserved else [0, 1, 2])


@pytest.mark.parametrize("handler", ["status_handler", "artifacts_handler", "finished_callback"])
def test_a_handler_given_the_dir_or_runner_gets_the_event_files(
    tmp_path: Path, handler: str
) -> None:
    """The dir, config or Runner handed to a handler: its job_events files are written."""
    files: list[list[str]] = []

    def look(*args: Any) -> None:  # a status handler's first call: before the dir is made
        folder = Path(runner.artifact_dir, "job_events")
        files.append(sorted(p.name for p in folder.iterdir()) if folder.exists() else [])

    runner = runner_for(
        make_job(tmp_path, temporary=True), ends("successful", 0), **{handler: look}
    )
    runner.unobserved = True
    fake, seen = lines_seeing_files(runner)
    runner.process_runner = fake  # type: ignore[method-assign, assignment]
    assert runner.run() == ("successful", 0)
    assert [len(names) for names in seen] == [0, 1, 2]
    assert len(files[-1]) == 3
