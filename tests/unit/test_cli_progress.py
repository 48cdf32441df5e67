"""What `containerrunner run` prints for a stream of events (synthetic events, no processes)."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from containerrunner.cli.progress import (
    JsonDisplay,
    LiveDisplay,
    Outcome,
    PlainDisplay,
    Tally,
    choose_display,
    recap_line,
    result_of,
)


def ev(kind: str, counter: int, **data: Any) -> dict[str, Any]:
    return {"event": kind, "counter": counter, "uuid": f"u{counter}", "event_data": data}


EVENTS = [
    ev("playbook_on_start", 1),
    ev("playbook_on_play_start", 2, play="Demo play", name="Demo play"),
    ev("playbook_on_task_start", 3, play="Demo play", task="Say hello"),
    ev("runner_on_start", 4, host="web1", task="Say hello"),
    ev("runner_on_start", 5, host="web2", task="Say hello"),
    ev("runner_on_ok", 6, host="web1", task="Say hello", res={"changed": False}),
    ev("runner_on_ok", 7, host="web2", task="Say hello", res={"changed": True}),
    ev("playbook_on_task_start", 8, play="Demo play", task="Check"),
    ev("runner_on_failed", 9, host="web2", task="Check", res={"msg": "non-zero\nreturn"}),
    ev("runner_on_failed", 10, host="web1", task="Check", res={"msg": "x"}, ignore_errors=True),
    ev("runner_on_skipped", 11, host="db1", task="Check", res={}),
    ev("runner_on_unreachable", 12, host="db2", task="Check", res={"msg": "no route"}),
    ev(
        "playbook_on_stats",
        13,
        ok={"web1": 1, "web2": 1},
        changed={"web2": 1},
        failures={"web2": 1},
        dark={"db2": 1},
        skipped={"db1": 1},
        ignored={"web1": 1},
        processed={"web1": 1, "web2": 1, "db1": 1, "db2": 1},
    ),
]


def test_result_lines() -> None:
    lines = [r.line() for e in EVENTS if (r := result_of(e)) is not None]
    assert lines == [
        "ok: [web1] => Say hello",
        "changed: [web2] => Say hello",
        "failed: [web2] => Check: non-zero return",
        "failed: [web1] => Check: x (ignored)",
        "skipping: [db1] => Check",
        "unreachable: [db2] => Check: no route",
    ]


def test_tally_tracks_play_task_hosts_and_counts() -> None:
    tally = Tally()
    for event in EVENTS[:6]:
        tally.add(event)
    snap = tally.snapshot()
    assert (snap["play"], snap["task"], snap["done"], snap["total"]) == (
        "Demo play",
        "Say hello",
        1,
        2,
    )
    for event in EVENTS[6:]:
        tally.add(event)
    assert tally.counts == {
        "ok": 2,
        "changed": 1,
        "failed": 1,
        "unreachable": 1,
        "skipped": 1,
        "ignored": 1,
    }
    per_host = tally.per_host()
    assert sorted(per_host) == ["db1", "db2", "web1", "web2"]
    assert per_host["web2"]["failed"] == 1 and per_host["db2"]["unreachable"] == 1


def test_plain_display() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = PlainDisplay(out, err)
    display.start()
    for event in EVENTS:
        display.event(event)
    display.finish(Outcome("failed", 2, "/tmp/a/x", failure_detail="boom"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "ok: [web1] => Say hello"
    assert recap_line("web2", {"ok": 1, "changed": 1, "failed": 1}) in lines
    assert lines[-1] == "failed (rc 2); artifacts: /tmp/a/x"
    assert "\x1b[" not in out.getvalue()  # not a terminal: no colour codes
    assert err.getvalue() == "boom\n"


def test_json_display_writes_one_event_per_line() -> None:
    out = io.StringIO()
    display = JsonDisplay(out)
    for event in EVENTS:
        display.event(event)
    display.finish(Outcome("successful", 0, "/x"))
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == EVENTS


def test_live_display_renders_task_and_final_table() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    display = LiveDisplay(console)
    display.start()
    for event in EVENTS[:4]:
        display.event(event)
    live = io.StringIO()
    Console(file=live, width=100, color_system=None).print(display.render())
    assert "Demo play" in live.getvalue() and "Say hello" in live.getvalue()
    assert "hosts 0/1" in live.getvalue()
    for event in EVENTS[4:]:
        display.event(event)
    display.finish(Outcome("failed", 2, "/x"))
    text = out.getvalue()
    for host in ("web1", "web2", "db1", "db2"):
        assert host in text
    assert "unreachable: [db2] => Check: no route" in text
    assert "failed (rc 2)" in text


def test_live_display_draws_the_progress_bar_from_the_runners_progress() -> None:
    from containerrunner.progress import ProgressTracker

    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    display = LiveDisplay(console)
    tracker = ProgressTracker()
    for event in EVENTS:
        display.event(event)
        if tracker.add(event):
            display.progress(tracker.snapshot())
    live = io.StringIO()
    Console(file=live, width=100, color_system=None).print(display.render())
    progress = tracker.snapshot()
    assert f"{progress.completed}/{progress.total} results" in live.getvalue()


def test_choose_display() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = io.StringIO()
    assert isinstance(
        choose_display(json_mode=True, quiet=False, stdout=Tty(), stderr=err), JsonDisplay
    )
    assert isinstance(
        choose_display(json_mode=False, quiet=False, stdout=Tty(), stderr=err), LiveDisplay
    )
    assert isinstance(
        choose_display(json_mode=False, quiet=True, stdout=Tty(), stderr=err), PlainDisplay
    )
    plain = choose_display(json_mode=False, quiet=False, stdout=io.StringIO(), stderr=err)
    assert isinstance(plain, PlainDisplay)


NETWORK_EVENTS = [
    ev("playbook_on_play_start", 1, play="Network", name="Network"),
    ev("playbook_on_task_start", 2, play="Network", task="show"),
    ev("runner_on_ok", 3, host="ios1", task="show",
       res={"changed": False, "stdout": ["Cisco IOS Software\nVersion 15.9", "Current privilege"],
            "stdout_lines": [["Cisco IOS Software", "Version 15.9"], ["Current privilege"]]}),
    ev("runner_on_ok", 4, host="eos1", task="show",
       res={"changed": False, "stdout": [{"hostname": "eos1"}]}),
    ev("runner_on_ok", 5, host="junos1", task="show", res={"stdout": "Junos: 21.4R1"}),
    ev("runner_on_failed", 6, host="refuser", task="show",
       res={"msg": "ssh connection failed: Failed to authenticate"}),
    ev("runner_on_unreachable", 7, host="gone", task="show", res={"msg": "no route"}),
    ev("playbook_on_stats", 8, ok={"ios1": 1, "eos1": 1, "junos1": 1},
       failures={"refuser": 1}, dark={"gone": 1}),
]  # fmt: skip


def output_of(event: dict[str, Any]) -> tuple[str, ...]:
    result = result_of(event)
    assert result is not None
    return result.output


def test_output_lines_of_command_results() -> None:
    assert output_of(NETWORK_EVENTS[2]) == (
        "Cisco IOS Software", "Version 15.9", "Current privilege",
    )  # fmt: skip
    assert output_of(NETWORK_EVENTS[3]) == ('{"hostname": "eos1"}',)
    assert output_of(NETWORK_EVENTS[4]) == ("Junos: 21.4R1",)
    assert output_of(EVENTS[5]) == ()
    loop = ev("runner_on_ok", 9, host="ios1", task="loop", res={"results": [
        {"item": "show version", "stdout": "IOS 15.9"}, {"item": "show clock", "stdout": ""},
        {"item": "show ip bgp", "stdout": "10.1.0.0/16\n10.2.0.0/16"},
    ]})  # fmt: skip
    assert output_of(loop) == (
        "[show version]", "IOS 15.9", "[show ip bgp]", "10.1.0.0/16", "10.2.0.0/16",
    )  # fmt: skip
    from containerrunner.cli.progress import output_lines

    assert output_lines("\n".join(str(i) for i in range(50)), limit=3) == (
        "0", "1", "2", "... (47 more lines)",
    )  # fmt: skip


def test_plain_display_shows_output_per_device_and_failures_after_the_recap() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = PlainDisplay(out, err, show_output=True)
    for event in NETWORK_EVENTS:
        display.event(event)
    display.finish(Outcome("failed", 2, "/x"))
    lines = out.getvalue().splitlines()
    i = lines.index("ok: [ios1] => show")
    assert lines[i + 1 : i + 4] == [
        "    Cisco IOS Software", "    Version 15.9", "    Current privilege",
    ]  # fmt: skip
    assert lines[lines.index("ok: [junos1] => show") + 1] == "    Junos: 21.4R1"
    recap = lines.index(recap_line("refuser", {"failed": 1}))
    assert lines[recap + 1 : recap + 3] == [
        "gone: show: no route (unreachable)",
        "refuser: show: connection failure (authentication): ssh connection failed: Failed to"
        " authenticate",
    ]
    assert (
        "failed: [refuser] => show: connection failure (authentication): ssh connection failed:"
        " Failed to authenticate"
    ) in lines
    assert lines[-1] == "failed (rc 2); artifacts: /x"


def test_plain_display_without_show_output_prints_no_output() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = PlainDisplay(out, err)
    for event in NETWORK_EVENTS:
        display.event(event)
    assert "Cisco IOS Software" not in out.getvalue()


def test_live_display_shows_output_and_failures() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    display = LiveDisplay(console, show_output=True)
    display.start()
    for event in NETWORK_EVENTS:
        display.event(event)
    display.finish(Outcome("failed", 2, "/x"))
    text = out.getvalue()
    assert "ok: [ios1] => show" in text and "    Version 15.9" in text
    reason = "connection failure (authentication): ssh connection failed: Failed to authenticate"
    # above the live view, as it came (wrapped at the console's width)
    assert "failed: [refuser] => show: connection failure (authentication)" in text
    assert f"refuser: show: {reason}" in text  # after the recap
