"""results.summarize on hand-made events: buckets, rescue from the recap, carry-forward."""

from __future__ import annotations

from typing import Any

from containerrunner.results import summarize, trim


def task_start(uuid: str, name: str, play: str = "p1") -> dict[str, Any]:
    return {
        "event": "playbook_on_task_start",
        "event_data": {"task_uuid": uuid, "task": name, "play_uuid": play, "play": play},
    }


def result(event: str, uuid: str, host: str, play: str = "p1", **data: Any) -> dict[str, Any]:
    res = data.pop("res", {"changed": False})
    return {
        "event": event,
        "event_data": {"task_uuid": uuid, "task": uuid, "play_uuid": play, "host": host,
                       "res": res, **data},
    }  # fmt: skip


def test_trim_drops_internal_keys_in_loop_results_too() -> None:
    res = {"msg": "x", "_ansible_no_log": False, "results": [{"_ansible_item_label": 1, "a": 2}]}
    assert trim(res) == {"msg": "x", "results": [{"a": 2}]}


def test_failure_with_always_but_no_rescue_stays_failed_by_the_recap() -> None:
    """The host runs its `always` task after failing, but the recap counts no rescue."""
    events = [
        task_start("t1", "breaks"),
        result("runner_on_failed", "t1", "h"),
        task_start("t2", "always"),
        result("runner_on_ok", "t2", "h"),
        {"event": "playbook_on_stats", "event_data": {"failures": {"h": 1}, "rescued": {}}},
    ]
    summary = summarize(events)
    assert list(summary.task("breaks").failed) == ["h"]
    assert summary.hosts["h"].state == "failed" and summary.hosts["h"].failed_tasks == ["breaks"]


def test_unreachable_is_carried_only_while_the_host_is_gone_and_only_in_its_play() -> None:
    events = [
        task_start("t1", "a"),
        result("runner_on_unreachable", "t1", "h1"),
        result("runner_on_ok", "t1", "h2"),
        task_start("t2", "b"),
        result("runner_on_ok", "t2", "h2", res={"changed": True}),
        task_start("t3", "c", play="p2"),
        result("runner_on_ok", "t3", "h2", play="p2"),
        # h3 was unreachable once but went on (ignore_unreachable): nothing carried
        task_start("t4", "d", play="p2"),
        result("runner_on_unreachable", "t4", "h3", play="p2"),
        task_start("t5", "e", play="p2"),
        result("runner_on_ok", "t5", "h3", play="p2"),
    ]
    summary = summarize(events)
    assert summary.task("b").unreachable["h1"]["carried_forward"] is True
    assert list(summary.task("b").changed) == ["h2"]
    assert "h1" not in summary.task("c").unreachable  # another play
    assert list(summary.task("e").ok) == ["h3"] and not summary.task("e").unreachable
    assert summary.hosts["h1"].state == "unreachable" and summary.hosts["h2"].state == "changed"


def test_events_without_data_give_no_tasks() -> None:
    """omit_event_data: nothing to say per task, but no error."""
    assert summarize([{"event": "runner_on_ok", "event_data": {}}]).tasks == []


def test_failures_are_classified_per_task_and_per_host() -> None:
    refused = {"msg": "Failed to authenticate: Authentication failed.", "changed": False}
    events = [
        task_start("t1", "show"),
        result("runner_on_failed", "t1", "sw1", res=refused),
        result("runner_on_failed", "t1", "sw2", res={"msg": "% Invalid input detected"}),
        result("runner_on_ok", "t1", "sw3"),
        result("runner_on_unreachable", "t1", "sw4", res={"unreachable": True, "msg": "gone"}),
        task_start("t2", "again"),
        result("runner_on_ok", "t2", "sw3"),
    ]
    summary = summarize(events)
    show = summary.task("show")
    assert {h: (f.kind, f.cause) for h, f in show.failures.items()} == {
        "sw1": ("connection", "authentication"),
        "sw2": ("task", None),
        "sw4": ("connection", "unreachable"),
    }
    assert summary.task("again").failures["sw4"].reason == "unreachable since task 'show'"
    sw1 = summary.hosts["sw1"]
    assert sw1.state == "failed" and sw1.failed_tasks == ["show"]  # Ansible's status stays
    assert sw1.failure is not None and sw1.failure.reason == refused["msg"]
    assert summary.hosts["sw3"].failure is None
    written = summary.to_dict()
    assert written["hosts"]["sw1"]["failure"] == {
        "kind": "connection", "reason": refused["msg"], "cause": "authentication",
    }  # fmt: skip
    assert written["tasks"][0]["failures"]["sw2"] == {
        "kind": "task", "reason": "% Invalid input detected", "cause": None,
    }  # fmt: skip
