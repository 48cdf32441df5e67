"""results.summarize on hand-made events: buckets, rescue from the recap, carry-forward."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

from containerrunner.results import (
    Collector,
    RawJSON,
    dumps_with_raw,
    summarize,
    trim,
    write_summary,
)


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


def loop_result(items: int) -> dict[str, Any]:
    """A debug loop's final result, as the callback sends it (internal keys included)."""
    return {
        "msg": "All items completed", "changed": False, "_ansible_no_log": False,
        "results": [
            {"msg": f"item {i}", "item": i, "ansible_loop_var": "item", "changed": False,
             "failed": False, "_ansible_item_label": i, "_ansible_no_log": False}
            for i in range(items)
        ],
    }  # fmt: skip


def test_big_results_are_held_as_text_not_as_parsed_objects() -> None:
    """Ten hosts' 3,000-item loop results, each event parsed from its line and dropped after
    `add` (as the runner does): the collector holds about their JSON text (held parsed, as
    it used to be, they took 4.5 times that)."""
    events = [task_start("t1", "loop")]
    events += [
        result("runner_on_ok", "t1", f"h{n}", res=loop_result(3000)) for n in range(10)
    ]  # fmt: skip
    lines = [json.dumps(event) for event in events]
    text = sum(len(json.dumps(trim(e["event_data"]["res"]))) for e in events[1:])
    tracemalloc.start()
    try:
        collector = Collector()
        for line in lines:
            collector.add(json.loads(line))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1.5 * text, (held, text)
    summary = collector.summary()
    assert summary.task("loop").ok["h3"]["results"][7] == {
        "msg": "item 7", "item": 7, "ansible_loop_var": "item", "changed": False,
        "failed": False,
    }  # fmt: skip


def test_each_summary_has_results_of_its_own() -> None:
    collector = Collector()
    collector.add(task_start("t1", "a"))
    collector.add(result("runner_on_ok", "t1", "h", res={"changed": False, "msg": "m"}))
    first = collector.summary()
    first.task("a").ok["h"]["msg"] = "changed by the caller"
    assert collector.summary().task("a").ok["h"]["msg"] == "m"


def test_summary_json_with_results_left_as_text_reads_as_the_parsed_summary(
    tmp_path: Path,
) -> None:
    """write_summary of the end-of-job summary (ok/changed results as their text) gives the
    same document as the parsed summary; names and results that look like anything (quotes,
    NULs, a would-be placeholder, non-ASCII) stay what they were."""
    odd = 'q"uo\\te \x00 nul, "deadbeef:0", ünï'
    events = [
        task_start("t1", odd),
        result("runner_on_ok", "t1", odd, res={"changed": True, "msg": odd, "n": [1, 2.5]}),
        result("runner_on_failed", "t1", "h2", res={"msg": "boom", "rc": 2}),
        task_start("t2", "skips"),
        result("runner_on_skipped", "t2", odd, res={"skip_reason": odd}),
    ]
    collector = Collector()
    for event in events:
        collector.add(event)
    compact = collector.summary(parsed=False)
    assert isinstance(compact.task(odd).changed[odd], RawJSON)
    assert compact.task(odd).failed["h2"] == {"msg": "boom", "rc": 2}  # parsed: junit reads it
    written = json.loads(write_summary(tmp_path, compact).read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(collector.summary().to_dict()))
    assert written["tasks"][0]["changed"][odd]["msg"] == odd
    assert written["hosts"]["h2"]["failure"]["kind"] == "task"


def test_dumps_with_raw_puts_the_text_in_as_it_is() -> None:
    value = {"a": RawJSON('{"x": [1, 2]}'), "b": [RawJSON("3"), "s"], "c": Path("/p")}
    assert json.loads(dumps_with_raw(value, indent=2)) == {"a": {"x": [1, 2]}, "b": [3, "s"],
                                                             "c": "/p"}  # fmt: skip
    assert dumps_with_raw({"plain": 1}) == json.dumps({"plain": 1})
