"""Group runs: several `run()` jobs at once, one result per job in input order.

    results = containerrunner.run_group(
        [dict(private_data_dir="demo", playbook="site.yml", process_isolation=True,
              process_isolation_executable=engine) for engine in ("podman", "docker")],
        max_parallel=2,
    )

Each job is the keyword arguments of one `run()`; it is built with `RunnerConfig.from_run_kwargs`
and run by its own `Runner`, as `run_async` does, in a pool of at most `max_parallel` worker
threads, in input order. A job that fails, or cannot even be built (a `ConfigurationError` in
its arguments: status `failed`, rc 254, `error` says why), does not stop the others.
`Group.cancel(i)` cancels one job (a pending one never starts), `Group.cancel()` all of them.
A job's own handlers keep working; the group's `progress_handler` gets a `GroupProgress`
whenever any job's progress changes and when a job ends, one call at a time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from containerrunner import interface
from containerrunner.errors import ConfigurationError, ContainerRunnerError
from containerrunner.progress import Progress
from containerrunner.results import Summary
from containerrunner.runner import STOPPED_RC, Runner
from containerrunner.validate import HANDLER_NAMES, kind

__all__ = ["Group", "GroupProgress", "GroupResult", "job_label", "run_group", "run_group_async"]

GroupProgressHandler = Callable[["GroupProgress"], Any]

# Short names for the options a label shows first (what a group usually varies).
LABEL_NAMES: Mapping[str, str] = {
    "process_isolation_executable": "engine",
    "container_image": "image",
    "inventory": "inventory",
}
# Options that differ between jobs without saying anything about what ran.
UNLABELLED = frozenset({*HANDLER_NAMES, "ident", "quiet", "input_fd", "output_fd", "error_fd"})
LABEL_VALUE_LIMIT = 60
FINAL_STATES = frozenset({"successful", "failed", "canceled", "timeout"})


@dataclass(frozen=True)
class GroupProgress:
    """Where a group is: the sums of its jobs' `Progress` (`total`, `completed`, `failed`),
    how many jobs there are and how many ended (`jobs_done`), and each job's latest
    `Progress` (None before its first)."""

    total: int
    completed: int
    failed: int
    jobs_total: int
    jobs_done: int
    jobs: tuple[Progress | None, ...]

    @property
    def fraction(self) -> float:
        """completed / total (0.0 before anything is expected)."""
        return self.completed / self.total if self.total else 0.0


@dataclass(frozen=True)
class GroupResult:
    """How one job of a group ended.

    `label` says what sets the job apart from the others (`engine=docker image=...`).
    `artifact_dir` is `artifacts/<ident>` when the job ran with artifacts that stay (a
    private data dir or artifact_dir given), else None. `error` is the message of the
    exception that stopped the job from being built or started (it is then `failed`, rc 254),
    or None. `runner` is the job's Runner (None when it could not be built; `unstarted` when
    it was canceled before it started).
    """

    index: int
    label: str
    status: str
    rc: int | None
    stats: dict[str, Any] | None
    summary: Summary | None
    artifact_dir: str | None
    error: str | None
    runner: Runner | None

    @property
    def successful(self) -> bool:
        return self.status == "successful"

    @property
    def node(self) -> str | None:
        """The scheduler node that ran the job (scheduler='swarm'; None for a local job, or
        when its artifacts did not stay): from `scheduler.json` in its artifacts dir."""
        from containerrunner.cluster.base import SCHEDULER_RECORD

        where = self.artifact_dir or (self.runner.artifact_dir if self.runner else None)
        if where is None:
            return None
        try:
            with open(os.path.join(where, SCHEDULER_RECORD), encoding="utf-8") as fh:
                node = json.load(fh).get("node")
        except (OSError, ValueError):
            return None
        return str(node) if node else None


def _value_text(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        text = str(value)
    elif isinstance(value, Sequence):
        text = ",".join(_value_text(v) for v in value)
    else:
        text = repr(value)
    text = " ".join(text.split())
    if len(text) > LABEL_VALUE_LIMIT:
        text = text[: LABEL_VALUE_LIMIT - 3] + "..."
    return text


def job_label(jobs: Sequence[Mapping[str, Any]], index: int) -> str:
    """`name=value ...` of the options in which job `index` differs from the others (the
    engine, image and inventory first); `job <index>` when nothing tells them apart."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job if k not in keys and k not in UNLABELLED]
    keys.sort(key=lambda k: list(LABEL_NAMES).index(k) if k in LABEL_NAMES else len(LABEL_NAMES))
    parts = []
    for key in keys:
        values = [job.get(key) for job in jobs]
        if any(callable(v) for v in values) or all(v == values[0] for v in values):
            continue
        parts.append(f"{LABEL_NAMES.get(key, key)}={_value_text(values[index])}")
    return " ".join(parts) or f"job {index}"


def _check_jobs(jobs: Any) -> list[Mapping[str, Any]]:
    if isinstance(jobs, str | bytes | Mapping) or not isinstance(jobs, Sequence):
        raise ConfigurationError(
            f"jobs must be a list of run() keyword-argument mappings, not {kind(jobs)}"
        )
    for index, job in enumerate(jobs):
        if not isinstance(job, Mapping):
            raise ConfigurationError(
                f"jobs[{index}] must be a mapping of run() keyword arguments, not {kind(job)}"
            )
        bad = [k for k in job if not isinstance(k, str)]
        if bad:
            raise ConfigurationError(f"jobs[{index}]: option names must be strings, not {bad!r}")
    return list(jobs)


def _check_max_parallel(value: Any, jobs: int) -> int:
    if value is None:
        return max(jobs, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_parallel must be a positive whole number, not {value!r}")
    return value


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ContainerRunnerError) else f"{type(exc).__name__}: {text}"


class _Slot:
    """One job's state inside the group (guarded by the group's lock)."""

    def __init__(self, index: int, label: str) -> None:
        self.index = index
        self.label = label
        self.runner: Runner | None = None
        self.error: str | None = None
        self.state = "pending"  # pending -> running -> done
        self.cancel_requested = False
        self.started = False  # the job's process started (its artifacts are written)
        self.progress: Progress | None = None
        self.result: GroupResult | None = None


class Group:
    """A group of `run()` jobs: built at once (`runners`), run by `start()` in worker threads.

    `run_group_async` gives one started; `wait()` returns the results in input order.
    """

    def __init__(
        self,
        jobs: Sequence[Mapping[str, Any]],
        max_parallel: int | None = None,
        progress_handler: GroupProgressHandler | None = None,
        cancel_callback: Callable[[], bool] | None = None,
    ) -> None:
        checked = _check_jobs(jobs)
        self.max_parallel = _check_max_parallel(max_parallel, len(checked))
        if progress_handler is not None and not callable(progress_handler):
            raise ConfigurationError(f"progress_handler must be callable, not {progress_handler!r}")
        if cancel_callback is not None and not callable(cancel_callback):
            raise ConfigurationError(f"cancel_callback must be callable, not {cancel_callback!r}")
        self.progress_handler = progress_handler
        self.cancel_callback = cancel_callback
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._all_done = threading.Event()
        self._cancel_all = threading.Event()
        self._next = 0
        self._threads: list[threading.Thread] = []
        self._slots = [_Slot(i, job_label(checked, i)) for i in range(len(checked))]
        for slot, kwargs in zip(self._slots, checked, strict=True):
            try:
                slot.runner = self._build(slot, kwargs)
            except Exception as exc:  # this job fails; the others still run
                slot.error = _error_text(exc)
        self._check_distinct_artifact_dirs()
        if not self._slots:
            self._all_done.set()

    # ------------------------------------------------------------------ building
    def _build(self, slot: _Slot, kwargs: Mapping[str, Any]) -> Runner:
        runner = interface.run_runner(dict(kwargs))
        runner.progress_handler = self._progress_handler(slot, runner.progress_handler)
        runner.cancel_callback = self._cancel_callback(runner.cancel_callback)
        runner.status_handler = self._status_handler(slot, runner.status_handler)
        return runner

    def _check_distinct_artifact_dirs(self) -> None:
        """Two jobs with one ident in one artifact dir would refuse each other: say so now."""
        seen: dict[str, int] = {}
        for slot in self._slots:
            if slot.runner is None:
                continue
            path = os.path.realpath(slot.runner.artifact_dir)
            if path in seen:
                raise ConfigurationError(
                    f"jobs[{seen[path]}] and jobs[{slot.index}] have the same ident "
                    f"{slot.runner.job.ident!r} in one artifact dir ({path}): give each job "
                    f"its own ident, or none (a new uuid each)"
                )
            seen[path] = slot.index

    def _progress_handler(
        self, slot: _Slot, own: Callable[[Progress], Any] | None
    ) -> Callable[[Progress], Any]:
        def handler(progress: Progress) -> None:
            if own is not None:
                own(progress)
            with self._lock:
                slot.progress = progress
            self._emit()

        return handler

    def _cancel_callback(self, own: Callable[[], bool] | None) -> Callable[[], bool] | None:
        """The job's cancel_callback, also asking the group's; without a group callback the
        job's own (or none: cancel() reaches running jobs through Runner.cancel, unpolled)."""
        if self.cancel_callback is None:
            return own

        def polled() -> bool:
            if self._group_canceled():
                return True
            return bool(own is not None and own())

        return polled

    def _status_handler(
        self, slot: _Slot, own: Callable[[dict[str, Any], Any], Any] | None
    ) -> Callable[[dict[str, Any], Any], Any]:
        def handler(data: dict[str, Any], config: Any) -> None:
            if data.get("status") == "running":
                slot.started = True
            if own is not None:
                own(data, config)

        return handler

    def _group_canceled(self) -> bool:
        if self._cancel_all.is_set():
            return True
        if self.cancel_callback is not None and self.cancel_callback():
            self.cancel()
            return True
        return False

    # ------------------------------------------------------------------ public
    @property
    def runners(self) -> tuple[Runner | None, ...]:
        """Each job's Runner, in input order (None: the job could not be built)."""
        return tuple(slot.runner for slot in self._slots)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each job's label (what sets it apart), in input order."""
        return tuple(slot.label for slot in self._slots)

    @property
    def build_errors(self) -> tuple[str | None, ...]:
        """Why each job could not be built (its Runner is None), or None, in input order."""
        return tuple(slot.error if slot.runner is None else None for slot in self._slots)

    @property
    def done(self) -> bool:
        """True once every job has ended (or was canceled before it started)."""
        return self._all_done.is_set()

    def start(self) -> Group:
        """Start the worker threads (once); returns the group."""
        with self._lock:
            if self._threads:
                return self
            workers = min(self.max_parallel, len(self._slots))
            self._threads = [
                threading.Thread(target=self._work, name=f"containerrunner-group-{n}")
                for n in range(workers)
            ]
        for thread in self._threads:
            thread.start()
        return self

    def cancel(self, index: int | None = None) -> None:
        """Cancel job `index` (a pending one never starts and ends `canceled`), or, without
        an index, the whole group: running jobs are canceled, pending ones never start."""
        if index is None:
            self._cancel_all.set()
            slots = list(self._slots)
        else:
            if isinstance(index, bool) or not isinstance(index, int):
                raise TypeError(f"index must be an int or None, not {index!r}")
            if not -len(self._slots) <= index < len(self._slots):
                raise IndexError(f"no job {index} in a group of {len(self._slots)}")
            slots = [self._slots[index]]
        for slot in slots:
            with self._lock:
                slot.cancel_requested = True
                running = slot.state == "running"
            if running and slot.runner is not None:
                slot.runner.cancel()

    def wait(self, timeout: float | None = None) -> list[GroupResult]:
        """The results in input order once every job has ended; TimeoutError when `timeout`
        seconds pass first (the jobs go on)."""
        if not self._threads and not self.done:
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                raise TimeoutError(f"the group's jobs did not all end within {timeout} s")
        return self.results()

    def results(self) -> list[GroupResult]:
        """The results of the jobs that ended, in input order (all of them once `done`)."""
        with self._lock:
            return [slot.result for slot in self._slots if slot.result is not None]

    def progress(self) -> GroupProgress:
        """The group's progress now."""
        with self._lock:
            jobs = tuple(slot.progress for slot in self._slots)
            done = sum(1 for slot in self._slots if slot.result is not None)
        known = [p for p in jobs if p is not None]
        return GroupProgress(
            total=sum(p.total for p in known),
            completed=sum(p.completed for p in known),
            failed=sum(p.failed for p in known),
            jobs_total=len(jobs),
            jobs_done=done,
            jobs=jobs,
        )

    # ------------------------------------------------------------------ workers
    def _emit(self) -> None:
        if self.progress_handler is None:
            return
        with self._emit_lock:  # one call at a time, each with the state as of that call
            self.progress_handler(self.progress())

    def _take(self) -> _Slot | None:
        with self._lock:
            if self._next >= len(self._slots):
                return None
            slot = self._slots[self._next]
            self._next += 1
            return slot

    def _work(self) -> None:
        while (slot := self._take()) is not None:
            try:
                self._run(slot)
            finally:
                self._end(slot)

    def _run(self, slot: _Slot) -> None:
        runner = slot.runner
        if runner is None:
            return
        if self._group_canceled():
            return
        with self._lock:
            if slot.cancel_requested:
                return
            slot.state = "running"
        try:
            runner.run()
        except Exception as exc:  # the Runner ended the job (failed/canceled); say why
            slot.error = _error_text(exc)

    def _end(self, slot: _Slot) -> None:
        result = self._result(slot)
        with self._lock:
            slot.state = "done"
            slot.result = result
            finished = all(s.result is not None for s in self._slots)
        self._emit()
        if finished:
            self._all_done.set()

    def _result(self, slot: _Slot) -> GroupResult:
        runner = slot.runner
        if runner is None or runner.status not in FINAL_STATES:
            # built and never run: canceled before its turn; else it could not be built or
            # its Runner stopped before it had a final status (a status_handler raised)
            canceled = runner is not None and slot.state == "pending"
            return GroupResult(
                index=slot.index,
                label=slot.label,
                status="canceled" if canceled else "failed",
                rc=STOPPED_RC,
                stats=None,
                summary=None,
                artifact_dir=None,
                error=slot.error,
                runner=runner,
            )
        keeps_artifacts = slot.started and runner.job.temporary_dir is None
        return GroupResult(
            index=slot.index,
            label=slot.label,
            status=runner.status,
            rc=runner.rc,
            stats=runner.stats,
            summary=runner.task_results() if slot.started else None,
            artifact_dir=runner.artifact_dir if keeps_artifacts else None,
            error=slot.error,
            runner=runner,
        )


def run_group_async(
    jobs: Sequence[Mapping[str, Any]],
    max_parallel: int | None = None,
    progress_handler: GroupProgressHandler | None = None,
    cancel_callback: Callable[[], bool] | None = None,
) -> Group:
    """Like run_group(), returning the started Group at once (`wait()`, `cancel()`)."""
    interface.observe(  # containerrunner.testing records the call
        "run_group_async",
        None,
        (),
        {
            "jobs": jobs,
            "max_parallel": max_parallel,
            "progress_handler": progress_handler,
            "cancel_callback": cancel_callback,
        },
    )
    return Group(jobs, max_parallel, progress_handler, cancel_callback).start()


def run_group(
    jobs: Sequence[Mapping[str, Any]],
    max_parallel: int | None = None,
    progress_handler: GroupProgressHandler | None = None,
    cancel_callback: Callable[[], bool] | None = None,
) -> list[GroupResult]:
    """Run each job (the keyword arguments of one `run()`), at most `max_parallel` at once
    (default: all); returns one GroupResult per job, in input order.

    A failing job does not stop the others. `cancel_callback()` (polled) cancels the whole
    group when it returns True; `progress_handler(GroupProgress)` hears the group's totals.
    An interrupt (Ctrl-C) while waiting cancels the group and waits for its jobs to end
    (their containers removed) before it propagates.
    """
    interface.observe(  # containerrunner.testing records the call
        "run_group",
        None,
        (),
        {
            "jobs": jobs,
            "max_parallel": max_parallel,
            "progress_handler": progress_handler,
            "cancel_callback": cancel_callback,
        },
    )
    group = Group(jobs, max_parallel, progress_handler, cancel_callback).start()
    return wait_canceling_on_interrupt(group)


def wait_canceling_on_interrupt(group: Group) -> list[GroupResult]:
    """`group.wait()`; on KeyboardInterrupt (or any exception) the group is canceled and its
    jobs waited for before the exception propagates."""
    try:
        return group.wait()
    except BaseException:
        group.cancel()
        group.wait()
        raise
