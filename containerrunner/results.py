"""Per-task results: what each task did on each host, read from a job's events.

`Collector` takes events one at a time (the Runner feeds it every event as it arrives, also
those the event handler drops) and gives a `Summary` at any moment: one `TaskResult` per task in
play order (name, uuid and path, so two tasks with one name stay apart), each with host -> result
maps per bucket, and per host its final state and its failed tasks. `load(artifact_dir)` builds
the same from `job_events/` alone, also one written by ansible-runner (the same event schema).

Buckets, one per task x host: `ok`, `changed`, `failed`, `unreachable`, `skipped`, `ignored`
(failed with `ignore_errors`), `rescued` (failed, and a `rescue` section caught it: the play
recap counts the host as rescued and not failed, or, when the recap has both or is not there
yet, the host went on in its play after this task). A host that became unreachable is listed as
unreachable for every later task of its play that ran (Ansible stops reporting it). `res` is
trimmed of Ansible's internal `_ansible_*` keys; what `no_log` hid stays hidden (the callback
plugin censors before any event is written).

Each failed, ignored, rescued or unreachable result is also classified (`failures`, host ->
`Failure`: kind `connection` or `task`, its `cause` and `reason`; see failures.py), and each
host's summary carries its first failure that counts (`failure`): a network device that refused
the login stays `failed`, as Ansible reports it, with kind `connection`, cause `authentication`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from containerrunner.artifacts import write_text_atomic
from containerrunner.events import RESULT_EVENTS as _RESULTS
from containerrunner.events import TASK_START_EVENTS as _TASK_STARTS
from containerrunner.events import load_events
from containerrunner.failures import Failure, classify

__all__ = [
    "BUCKETS",
    "Collector",
    "HostSummary",
    "RawJSON",
    "Summary",
    "TaskResult",
    "load",
    "summarize",
]

Bucket = Literal["ok", "changed", "failed", "unreachable", "skipped", "ignored", "rescued"]
BUCKETS: tuple[Bucket, ...] = (
    "ok", "changed", "failed", "unreachable", "skipped", "ignored", "rescued",
)  # fmt: skip
SUMMARY_FILE = "summary.json"


@dataclass
class TaskResult:
    """One task of one play, with host -> `res` per bucket."""

    uuid: str
    name: str
    path: str
    action: str
    play: str
    play_uuid: str
    ok: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, Any] = field(default_factory=dict)
    unreachable: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, Any] = field(default_factory=dict)
    ignored: dict[str, Any] = field(default_factory=dict)
    rescued: dict[str, Any] = field(default_factory=dict)
    duration: dict[str, float] = field(default_factory=dict)  # host -> seconds, when known
    failures: dict[str, Failure] = field(default_factory=dict)  # host -> why it failed

    def bucket_of(self, host: str) -> Bucket | None:
        for bucket in BUCKETS:
            if host in getattr(self, bucket):
                return bucket
        return None

    def hosts(self) -> list[str]:
        return sorted({host for bucket in BUCKETS for host in getattr(self, bucket)})


@dataclass
class HostSummary:
    """A host's final state (`unreachable`, `failed`, `changed`, `ok` or `skipped`), the
    names of the tasks that failed on it (not ignored, not rescued), and the first failure that
    counted (failed or unreachable; None when there was none)."""

    state: str
    failed_tasks: list[str] = field(default_factory=list)
    failure: Failure | None = None


@dataclass
class Summary:
    tasks: list[TaskResult]
    hosts: dict[str, HostSummary]

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists for JSON; the results (`res`) are the summary's own objects,
        not copies."""
        return {
            "tasks": [_task_dict(task) for task in self.tasks],
            "hosts": {host: asdict(summary) for host, summary in self.hosts.items()},
        }

    def task(self, name: str) -> TaskResult:
        """The first task called `name` (KeyError naming it if there is none)."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task named {name!r}; tasks: {[t.name for t in self.tasks]}")


def trim(res: Any) -> Any:
    """`res` without Ansible's internal `_ansible_*` keys (in loop results too)."""
    if isinstance(res, Mapping):
        return {
            key: trim(value) if key == "results" else value
            for key, value in res.items()
            if not (isinstance(key, str) and key.startswith("_ansible_"))
        }
    if isinstance(res, list):
        return [trim(item) for item in res]
    return res


def _task_dict(task: TaskResult) -> dict[str, Any]:
    out = {f.name: getattr(task, f.name) for f in fields(task)}
    out["failures"] = {host: asdict(failure) for host, failure in task.failures.items()}
    return out


class RawJSON:
    """A result kept as its JSON text: what `Collector.summary(parsed=False)` puts in the ok
    and changed buckets, for the end-of-job files (write_summary copies the text as is)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@dataclass
class _Result:
    task: int  # index into Collector._tasks
    host: str
    bucket: Bucket
    res: str  # the trimmed result as JSON text: a fraction of the parsed objects' memory
    failure: Failure | None  # classified as it came in (failed, unreachable, ignored)
    duration: float | None


class Collector:
    """Per-task results of one job, built event by event; thread-safe.

    Each result is kept as the JSON text of its trimmed `res` (a loop's result holds every
    item, up to the callback's size limit per result: parsed, that is several times the
    text), and parsed again by each summary()."""

    def __init__(self) -> None:
        self._tasks: list[TaskResult] = []
        self._index: dict[str, int] = {}  # task uuid (per play) -> index in _tasks
        self._results: list[_Result] = []
        self._recap: Mapping[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, event: Mapping[str, Any]) -> None:
        name = event.get("event")
        data = event.get("event_data")
        if not isinstance(data, Mapping):
            return
        if name == "playbook_on_stats":
            self._recap = data
            return
        if name not in _TASK_STARTS and name not in _RESULTS:
            return
        with self._lock:
            index = self._task_index(data)
            if index is None or name in _TASK_STARTS:
                return
            host = str(data.get("host", ""))
            duration = data.get("duration")
            bucket = _bucket(str(name), data)
            res = data.get("res")
            failure = (
                classify(res, unreachable=bucket == "unreachable") if bucket in _FAILED else None
            )
            self._results.append(
                _Result(
                    index, host, bucket, json.dumps(trim(res), default=str), failure,
                    float(duration) if isinstance(duration, int | float) else None,
                )
            )  # fmt: skip

    def _task_index(self, data: Mapping[str, Any]) -> int | None:
        uuid = data.get("task_uuid")
        if not uuid:
            return None
        key = f"{data.get('play_uuid', '')}/{uuid}"
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self._tasks)
            self._tasks.append(
                TaskResult(
                    uuid=str(uuid),
                    name=str(data.get("task", "")),
                    path=str(data.get("task_path", "")),
                    action=str(data.get("task_action", "")),
                    play=str(data.get("play", "")),
                    play_uuid=str(data.get("play_uuid", "")),
                )
            )
        return index

    def summary(self, parsed: bool = True) -> Summary:
        """The summary so far. With `parsed=False` the ok and changed results stay `RawJSON`
        (their text, not parsed again): only for write_summary and junit, which do not read
        them, so that the end of a job with big results does not hold them all parsed."""
        with self._lock:
            tasks = [_fresh(task) for task in self._tasks]
            results = list(self._results)
            recap = self._recap
        # the last task index each host reported in, per play
        last_in_play: dict[tuple[str, str], int] = {}
        for result in results:
            key = (tasks[result.task].play_uuid, result.host)
            last_in_play[key] = max(last_in_play.get(key, -1), result.task)
        gone: dict[tuple[str, str], str] = {}  # (play, host) -> the task it became unreachable in
        for result in results:
            task = tasks[result.task]
            bucket = result.bucket
            went_on = last_in_play[(task.play_uuid, result.host)] > result.task
            if bucket == "failed" and _rescued(recap, result.host, went_on):
                bucket = "rescued"
            if bucket == "unreachable" and not went_on:
                gone[(task.play_uuid, result.host)] = task.name
            keep_text = not parsed and bucket in ("ok", "changed")
            res = RawJSON(result.res) if keep_text else json.loads(result.res)
            getattr(task, bucket)[result.host] = res
            if result.failure is not None:
                task.failures[result.host] = result.failure
            if result.duration is not None:
                task.duration[result.host] = result.duration
        for index, task in enumerate(tasks):  # carried forward: later tasks that ran
            for (play, host), where in gone.items():
                reported = task.bucket_of(host) is not None
                later = index > last_in_play[(play, host)]
                if task.play_uuid == play and later and not reported and task.hosts():
                    task.unreachable[host] = carried = {
                        "unreachable": True,
                        "msg": f"unreachable since task {where!r}",
                        "carried_forward": True,
                    }
                    task.failures[host] = classify(carried, unreachable=True)
        return Summary(tasks=tasks, hosts=_host_summaries(tasks))


def _fresh(task: TaskResult) -> TaskResult:
    """A copy of `task` with empty buckets (a summary never shares state with the collector)."""
    empty: dict[str, Any] = {bucket: {} for bucket in (*BUCKETS, "duration", "failures")}
    return TaskResult(**{**asdict(task), **empty})


def _rescued(recap: Mapping[str, Any], host: str, went_on: bool) -> bool:
    """Whether a host's failure was rescued: the recap says so when it counts the host only as
    rescued (or never rescued); otherwise the host going on in its play tells."""

    def count(key: str) -> int:
        value = recap.get(key)
        return int(value.get(host, 0)) if isinstance(value, Mapping) else 0

    if recap and count("rescued") == 0:
        return False
    if recap and count("failures") == 0:
        return True
    return went_on


def _bucket(name: str, data: Mapping[str, Any]) -> Bucket:
    if name == "runner_on_unreachable":
        return "unreachable"
    if name == "runner_on_skipped":
        return "skipped"
    if name in ("runner_on_failed", "runner_on_async_failed"):
        return "ignored" if data.get("ignore_errors") else "failed"
    res = data.get("res")
    return "changed" if isinstance(res, Mapping) and res.get("changed") else "ok"


_STATE_ORDER = ("unreachable", "failed", "changed", "ok", "skipped")
_FAILED: tuple[Bucket, ...] = ("failed", "unreachable", "ignored", "rescued")  # classified


def _host_summaries(tasks: list[TaskResult]) -> dict[str, HostSummary]:
    hosts: dict[str, HostSummary] = {}
    for task in tasks:
        for host in task.hosts():
            summary = hosts.setdefault(host, HostSummary(state="skipped"))
            bucket = task.bucket_of(host)
            state = {"ignored": "ok", "rescued": "ok"}.get(str(bucket), str(bucket))
            if _STATE_ORDER.index(state) < _STATE_ORDER.index(summary.state):
                summary.state = state
            if bucket == "failed":
                summary.failed_tasks.append(task.name)
            if bucket in ("failed", "unreachable") and summary.failure is None:
                summary.failure = task.failures.get(host)
    return dict(sorted(hosts.items()))


def summarize(events: Iterable[Mapping[str, Any]]) -> Summary:
    """The Summary of `events` (any order-preserving iterable of event dicts)."""
    collector = Collector()
    for event in events:
        collector.add(event)
    return collector.summary()


def load(artifact_dir: str | os.PathLike[str]) -> Summary:
    """The Summary of the job whose artifacts are in `artifact_dir` (`artifacts/<ident>`),
    from its `job_events/` (containerrunner's or ansible-runner's)."""
    return summarize(load_events(artifact_dir))


def write_summary(artifact_dir: str | os.PathLike[str], summary: Summary) -> Path:
    """summary.json: indented, but a RawJSON result as its text, on one line."""
    path = Path(artifact_dir) / SUMMARY_FILE
    write_text_atomic(path, dumps_with_raw(summary.to_dict(), indent=2) + "\n")
    return path


def dumps_with_raw(value: Any, indent: int | None = None) -> str:
    """json.dumps of `value` with each RawJSON's text put in as it is (anything else that is
    not JSON becomes its str)."""
    token = secrets.token_hex(8)  # no result or name can spell the placeholder by chance
    raws: list[str] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, RawJSON):
            raws.append(obj.text)
            return f"{token}:{len(raws) - 1}"
        return str(obj)

    text = json.dumps(value, indent=indent, default=default)
    if not raws:
        return text
    placeholder = re.compile(f'"{token}:([0-9]+)"')
    return placeholder.sub(lambda match: raws[int(match[1])], text)
