"""Group runs (containerrunner.group) through the real Runner with containerrunner.testing's
scripted jobs: validation, input order, the max_parallel bound, cancel, failures that do not
stop the others, and the group's progress totals. Jobs that must be held at a point block in
their own status_handler (called in the worker thread when the job's process starts) on an
Event the test sets; the waits on Events carry a limit only so a bug fails instead of hanging."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import ConfigurationError
from containerrunner.group import Group, GroupProgress, job_label
from containerrunner.progress import Progress
from containerrunner.testing import FakeRuns, playbook_events

LIMIT = 30  # seconds; only so that a bug fails the test instead of hanging it
PLAY = [{"hosts": "all", "gather_facts": False, "tasks": [{"ansible.builtin.ping": {}}]}]


def job(**kw: Any) -> dict[str, Any]:
    return {"playbook": PLAY, "inventory": "localhost,", "quiet": True, **kw}


class Gate:
    """A status_handler that holds a job when its process starts, until `release()`."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.released = threading.Event()

    def __call__(self, data: dict[str, Any], config: Any) -> None:
        if data["status"] == "running":
            self.running.set()
            assert self.released.wait(LIMIT), "the test never released the job"

    def release(self) -> None:
        self.released.set()


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ({"playbook": "x.yml"}, "jobs must be a list"),
        ("site.yml", "jobs must be a list"),
        (None, "jobs must be a list"),
        ([job(), "site.yml"], r"jobs\[1\] must be a mapping"),
        ([job(), job(), None], r"jobs\[2\] must be a mapping"),
    ],
)
def test_jobs_must_be_a_sequence_of_mappings(
    containerrunner_fake: FakeRuns, jobs: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        containerrunner.run_group(jobs)
    assert containerrunner_fake.jobs == []


@pytest.mark.parametrize("value", [0, -1, "2", 1.5, True])
def test_max_parallel_must_be_a_positive_int(containerrunner_fake: FakeRuns, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_parallel"):
        containerrunner.run_group([job()], max_parallel=value)
    assert containerrunner_fake.jobs == []


def test_handlers_must_be_callable(containerrunner_fake: FakeRuns) -> None:
    with pytest.raises(ConfigurationError, match="progress_handler"):
        containerrunner.run_group([job()], progress_handler="print")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cancel_callback"):
        containerrunner.run_group([job()], cancel_callback=1)  # type: ignore[arg-type]


def test_one_ident_twice_in_one_artifact_dir_is_refused(
    containerrunner_fake: FakeRuns, tmp_path: Path
) -> None:
    jobs = [job(private_data_dir=str(tmp_path), ident=i) for i in ("a", "b", "a")]
    with pytest.raises(ConfigurationError, match=r"jobs\[0\] and jobs\[2\].*'a'"):
        containerrunner.run_group(jobs)
    assert containerrunner_fake.jobs == []


def test_an_empty_group_has_no_results(containerrunner_fake: FakeRuns) -> None:
    assert containerrunner.run_group([]) == []


# ---------------------------------------------------------------------- results
def test_results_come_in_input_order(containerrunner_fake: FakeRuns, tmp_path: Path) -> None:
    for rc in (0, 2, 0, 4):
        containerrunner_fake.script(rc=rc)
    jobs = [job(private_data_dir=str(tmp_path), limit=f"host{i}") for i in range(4)]
    # one at a time, so the scripts (taken in start order) meet the jobs in input order
    results = containerrunner.run_group(jobs, max_parallel=1)
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [(r.status, r.rc) for r in results] == [
        ("successful", 0), ("failed", 2), ("successful", 0), ("failed", 4),
    ]  # fmt: skip
    assert [r.label for r in results] == [f"limit=host{i}" for i in range(4)]
    for i, (result, fake_job) in enumerate(zip(results, containerrunner_fake.jobs, strict=True)):
        assert f"host{i}" in fake_job.command
        assert result.runner is not None and result.runner.status == result.status
        assert result.error is None
    dirs = [r.artifact_dir for r in results]
    assert len(set(dirs)) == 4, "each job gets its own ident (a uuid)"
    for d in dirs:
        assert d is not None and Path(d).parent == tmp_path / "artifacts"
        assert (Path(d) / "status").exists()


def test_stats_and_summary_per_job(containerrunner_fake: FakeRuns) -> None:
    containerrunner_fake.default = containerrunner_fake.script(
        rc=2, events=playbook_events({"install": {"web1": "ok", "web2": "failed"}})
    )
    results = containerrunner.run_group([job(), job()])
    for result in results:
        assert result.status == "failed" and result.rc == 2
        assert result.stats is not None and result.stats["failures"] == {"web2": 1}
        assert result.summary is not None
        assert result.summary.hosts["web2"].failed_tasks == ["install"]
        assert result.artifact_dir is None  # a temporary private data dir, removed
    assert [r.label for r in results] == ["job 0", "job 1"]


def test_an_unbuildable_or_failing_job_does_not_stop_the_others(
    containerrunner_fake: FakeRuns,
) -> None:
    for rc in (0, 2, 0):
        containerrunner_fake.script(rc=rc)
    jobs = [job(), job(forks="many"), job(), job(playbook="/nonexistent/site.yml"), job()]
    results = containerrunner.run_group(jobs, max_parallel=1)
    assert [(r.status, r.rc) for r in results] == [
        ("successful", 0), ("failed", 254), ("failed", 2), ("failed", 254), ("successful", 0),
    ]  # fmt: skip
    assert results[1].runner is None and results[1].error is not None
    assert "forks" in results[1].error
    assert results[3].error is not None and "/nonexistent/site.yml" in results[3].error
    assert [r.error for r in (results[0], results[2], results[4])] == [None, None, None]
    assert len(containerrunner_fake.jobs) == 3


def test_a_job_that_cannot_start_is_failed_with_the_reason(containerrunner_fake: FakeRuns) -> None:
    def no_engine(job: Any) -> tuple[None, None]:
        if job.execution.process_isolation:
            raise containerrunner.EngineError("no working podman")
        return None, None

    # not monkeypatch: its undo runs after the fake's (the autouse fixtures set monkeypatch
    # up first) and would leave the fake's resolver on Runner for the tests after this one
    faked = containerrunner.Runner.__dict__["engine_resolver"]
    containerrunner.Runner.engine_resolver = staticmethod(no_engine)
    try:
        results = containerrunner.run_group([job(), job(process_isolation=True)])
    finally:
        containerrunner.Runner.engine_resolver = faked
    assert [(r.status, r.rc) for r in results] == [("successful", 0), ("failed", 254)]
    assert results[1].error == "no working podman"
    assert results[1].runner is not None and results[1].summary is None
    assert results[1].label == "process_isolation=True"


def test_the_call_is_recorded_by_the_fake(containerrunner_fake: FakeRuns) -> None:
    containerrunner.run_group([job()], max_parallel=3)
    [call] = containerrunner_fake.calls
    assert call.helper == "run_group" and call.arguments["max_parallel"] == 3


# ---------------------------------------------------------------------- max_parallel
def test_max_parallel_bounds_the_jobs_running_at_once(containerrunner_fake: FakeRuns) -> None:
    both_running = threading.Barrier(2, timeout=LIMIT)
    at_gate = threading.Semaphore(0)
    gate = threading.Event()

    def first_two(data: dict[str, Any], config: Any) -> None:
        if data["status"] == "running":
            both_running.wait()  # only passes when the two jobs run at the same time
            at_gate.release()
            assert gate.wait(LIMIT)

    jobs = [job(status_handler=first_two), job(status_handler=first_two), job()]
    group = containerrunner.run_group_async(jobs, max_parallel=2)
    assert at_gate.acquire(timeout=LIMIT) and at_gate.acquire(timeout=LIMIT)
    third = group.runners[2]
    assert third is not None and third.status == "unstarted", "a third job started"
    assert not group.done and group.results() == []
    gate.set()
    results = group.wait()
    assert [r.status for r in results] == ["successful"] * 3 and group.done


def test_wait_with_a_timeout_raises_while_jobs_run(containerrunner_fake: FakeRuns) -> None:
    gate = Gate()
    group = containerrunner.run_group_async([job(status_handler=gate)])
    assert gate.running.wait(LIMIT)
    with pytest.raises(TimeoutError):
        group.wait(timeout=0)
    gate.release()
    assert [r.status for r in group.wait()] == ["successful"]


# ---------------------------------------------------------------------- cancel
def test_group_cancel_leaves_pending_jobs_unstarted(containerrunner_fake: FakeRuns) -> None:
    gate = Gate()
    group = containerrunner.run_group_async(
        [job(status_handler=gate), job(), job(), job()], max_parallel=1
    )
    assert gate.running.wait(LIMIT)
    group.cancel()
    gate.release()  # the fake's process ignores the cancel: job 0 ends as scripted
    results = group.wait()
    assert results[0].status == "successful"
    assert [(r.status, r.rc) for r in results[1:]] == [("canceled", 254)] * 3
    for result in results[1:]:
        assert result.runner is not None and result.runner.status == "unstarted"
        assert result.artifact_dir is None and result.summary is None
    assert len(containerrunner_fake.jobs) == 1


def test_cancel_one_pending_job_runs_the_others(containerrunner_fake: FakeRuns) -> None:
    gate = Gate()
    group = containerrunner.run_group_async(
        [job(status_handler=gate), job(), job(), job()], max_parallel=1
    )
    assert gate.running.wait(LIMIT)
    group.cancel(2)
    gate.release()
    results = group.wait()
    assert [r.status for r in results] == ["successful", "successful", "canceled", "successful"]
    assert len(containerrunner_fake.jobs) == 3


def test_cancel_a_running_job_cancels_its_runner(containerrunner_fake: FakeRuns) -> None:
    gate = Gate()
    group = containerrunner.run_group_async([job(status_handler=gate), job()])
    assert gate.running.wait(LIMIT)
    group.cancel(0)
    runner = group.runners[0]
    assert runner is not None and runner.steering.stop_request is not None
    assert runner.steering.stop_request.outcome == "canceled"
    gate.release()
    group.wait()


def test_cancel_index_out_of_range(containerrunner_fake: FakeRuns) -> None:
    group = Group([job()])
    with pytest.raises(IndexError, match="no job 1"):
        group.cancel(1)
    assert [r.status for r in group.wait()] == ["successful"]


def test_the_group_cancel_callback_stops_jobs_not_started(containerrunner_fake: FakeRuns) -> None:
    results = containerrunner.run_group([job(), job()], cancel_callback=lambda: True)
    assert [(r.status, r.rc) for r in results] == [("canceled", 254)] * 2
    assert containerrunner_fake.jobs == []


# ---------------------------------------------------------------------- handlers, progress
def test_a_jobs_own_handlers_still_work(containerrunner_fake: FakeRuns) -> None:
    containerrunner_fake.default = containerrunner_fake.script(
        events=playbook_events({"t": {"h1": "ok"}})
    )
    statuses: list[str] = []
    events: list[str] = []
    progress: list[Progress] = []
    finished: list[Any] = []
    jobs = [
        job(
            status_handler=lambda data, config: statuses.append(data["status"]),
            event_handler=lambda event: events.append(event["event"]) or True,
            progress_handler=progress.append,
            finished_callback=finished.append,
        ),
        job(),
    ]
    results = containerrunner.run_group(jobs)
    assert statuses == ["starting", "running", "successful"]
    assert events[0] == "playbook_on_start" and events[-1] == "playbook_on_stats"
    assert progress and progress[-1].completed == 1
    assert finished == [results[0].runner]


def test_group_progress_sums_the_jobs(containerrunner_fake: FakeRuns) -> None:
    outcomes = [{"a": "ok", "b": "failed"}, {"a": "ok"}, {"a": "unreachable", "b": "changed"}]
    for hosts in outcomes:
        containerrunner_fake.script(events=playbook_events({"t1": hosts, "t2": {"a": "ok"}}))
    seen: list[GroupProgress] = []
    lock = threading.Lock()

    def on_progress(progress: GroupProgress) -> None:
        with lock:  # the group calls it one at a time: nobody else holds the lock
            seen.append(progress)

    results = containerrunner.run_group([job(), job(), job()], progress_handler=on_progress)
    last = seen[-1]
    assert (last.jobs_total, last.jobs_done) == (3, 3)
    assert (last.total, last.completed, last.failed) == (3 + 2 + 3, 3 + 2 + 3, 1 + 0 + 1)
    assert last.fraction == 1.0
    assert len(last.jobs) == 3 and all(p is not None for p in last.jobs)
    runners = [r.runner for r in results]
    assert sorted(p.total for p in last.jobs if p) == sorted(
        r.progress().total for r in runners if r
    )
    done = [p.jobs_done for p in seen]
    assert done == sorted(done), "jobs_done never goes back"
    assert all(p.completed <= p.total for p in seen)


# ---------------------------------------------------------------------- labels
def test_labels_name_what_differs() -> None:
    jobs = [
        {"playbook": "site.yml", "process_isolation_executable": e, "container_image": i,
         "ident": f"x{n}", "event_handler": print}
        for n, (e, i) in enumerate(
            [(e, i) for e in ("podman", "docker") for i in ("ee:latest", "ee:2.14")]
        )
    ]  # fmt: skip
    assert [job_label(jobs, n) for n in range(4)] == [
        "engine=podman image=ee:latest",
        "engine=podman image=ee:2.14",
        "engine=docker image=ee:latest",
        "engine=docker image=ee:2.14",
    ]
    inventories = [{"inventory": ["a.ini", "b.ini"]}, {"inventory": "c.ini"}, {}]
    assert [job_label(inventories, n) for n in range(3)] == [
        "inventory=a.ini,b.ini",
        "inventory=c.ini",
        "inventory=None",
    ]
    assert job_label([{"extravars": {"x": "y" * 100}}, {}], 0).endswith("...")
