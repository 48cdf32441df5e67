"""ProgressTracker: totals grow as tasks start on hosts; completed, failed, where the job is."""

from __future__ import annotations

from typing import Any

from containerrunner.progress import ProgressTracker


def ev(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": data}


def test_progress_follows_tasks_and_hosts() -> None:
    tracker = ProgressTracker()
    assert tracker.add(ev("playbook_on_play_start", name="Deploy"))
    assert tracker.add(ev("playbook_on_task_start", task="install", task_uuid="t1"))
    for host in ("web1", "web2", "db1"):
        tracker.add(ev("runner_on_start", host=host, task_uuid="t1"))
    tracker.add(ev("runner_on_ok", host="web1", task_uuid="t1", res={}))
    p = tracker.snapshot()
    assert (p.total, p.completed, p.failed) == (3, 1, 0)
    assert (p.play, p.task, p.running) == ("Deploy", "install", ("web2", "db1"))
    assert p.fraction == 1 / 3
    tracker.add(ev("runner_on_failed", host="web2", task_uuid="t1", ignore_errors=True))
    tracker.add(ev("runner_on_unreachable", host="db1", task_uuid="t1"))
    tracker.add(ev("playbook_on_task_start", task="start", task_uuid="t2"))
    tracker.add(ev("runner_on_skipped", host="web1", task_uuid="t2"))  # no start event seen
    p = tracker.snapshot()
    assert (p.total, p.completed, p.failed, p.running) == (4, 4, 1, ())
    assert not tracker.add(ev("verbose"))  # nothing changed: no progress_handler call
