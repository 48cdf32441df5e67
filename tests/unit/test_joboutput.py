"""joboutput: the plugin's mark removed from every copy, lines before it made verbose events,
the plugin's events held and numbered after them; the helpers' generated `_async` twins."""

from __future__ import annotations

import inspect
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.joboutput import (
    MAX_VERBOSE_LINE,
    OUTPUT_MARK,
    EventSequencer,
    JobOutput,
    OutputStream,
)


class Lines:
    def __init__(self) -> None:
        self.text = ""
        self.lines: list[tuple[str, bool]] = []
        self.marks = 0

    def stream(self) -> OutputStream:
        def write(text: str) -> None:
            self.text += text

        def mark() -> None:
            self.marks += 1

        return OutputStream(write, lambda line, nl: self.lines.append((line, nl)), mark)


@pytest.mark.parametrize("cut", range(len(OUTPUT_MARK) + 3))
def test_the_mark_is_found_wherever_a_chunk_ends(cut: int) -> None:
    data = "warning\r\npart" + OUTPUT_MARK + "PLAY\n" + OUTPUT_MARK + "more\n"
    at = data.index(OUTPUT_MARK) + cut - 2
    seen = Lines()
    stream = seen.stream()
    stream(data[:at])
    stream(data[at:])
    stream.finish()
    assert seen.text == "warning\r\npartPLAY\nmore\n"
    assert seen.lines == [("warning", True), ("part", False)]  # the rest belongs to events
    assert seen.marks == 1


def test_without_a_mark_every_line_is_verbose_and_escapes_pass() -> None:
    seen = Lines()
    stream = seen.stream()
    stream("\x1b[0;31mred\x1b[0m\nlast \x1b_")  # an escape that is not the mark, held back
    assert seen.text == "\x1b[0;31mred\x1b[0m\nlast "
    stream.finish()
    assert seen.text == "\x1b[0;31mred\x1b[0m\nlast \x1b_"
    assert seen.lines == [("\x1b[0;31mred\x1b[0m", True), ("last \x1b_", False)]
    assert seen.marks == 1  # the end counts as the mark: held events may go


def test_sequencer_numbers_plugin_events_after_the_verbose_lines() -> None:
    got: list[dict[str, Any]] = []
    seq = EventSequencer(got.append, "job", streams=2)
    seq.verbose("[WARNING]: one", True)
    seq.plugin_event({"counter": 1, "event": "playbook_on_start", "start_line": 0, "end_line": 0})
    seq.stream_marked()
    seq.verbose("[WARNING]: on stderr", True)  # the other stream had not marked yet
    assert [e["counter"] for e in got] == [1, 2]  # the plugin's event is held
    seq.stream_marked()
    seq.plugin_event({"counter": 2, "event": "playbook_on_play_start", "start_line": 0,
                      "end_line": 2})  # fmt: skip
    assert [(e["counter"], e["event"], e["start_line"], e["end_line"]) for e in got] == [
        (1, "verbose", 0, 1),
        (2, "verbose", 1, 2),
        (3, "playbook_on_start", 2, 2),
        (4, "playbook_on_play_start", 2, 4),
    ]
    assert got[0]["runner_ident"] == "job" and got[0]["event_data"] == {}


def test_sequencer_close_releases_held_events() -> None:
    got: list[dict[str, Any]] = []
    seq = EventSequencer(got.append, "job", streams=1)
    seq.plugin_event({"counter": 1, "event": "playbook_on_start"})
    assert got == []
    seq.close()
    seq.plugin_event({"counter": 2, "event": "playbook_on_stats"})
    assert [e["counter"] for e in got] == [1, 2]  # no verbose line: nothing shifted


def test_job_output_copies_and_json_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got: list[dict[str, Any]] = []
    caller = io.StringIO()
    out = JobOutput(
        tmp_path / "stdout", tmp_path / "stderr", ident="j", deliver=got.append, merged=False,
        error_fd=caller, quiet=False, json_mode=True,
    )  # fmt: skip
    out.stdout("before\n" + OUTPUT_MARK)
    out.stderr("err line\n" + OUTPUT_MARK)
    event = {"counter": 1, "event": "playbook_on_start", "stdout": ""}
    out.sequencer.plugin_event(event)
    out.event_line(event)
    out.finish()
    out.close()
    assert (tmp_path / "stdout").read_text() == "before\n" + json.dumps(event) + "\n"
    assert (tmp_path / "stderr").read_text() == "err line\n"
    assert caller.getvalue() == "err line\n"  # the caller's own stream, not verbose events
    assert capsys.readouterr().out == "before\n" + json.dumps(event) + "\n"  # not quiet: echo
    assert [e["event"] for e in got] == ["verbose", "playbook_on_start"]
    assert got[1]["counter"] == 2


def test_job_output_is_thread_safe_for_event_lines(tmp_path: Path) -> None:
    out = JobOutput(
        tmp_path / "o", tmp_path / "e", ident="j", deliver=lambda e: None, merged=True,
        json_mode=True,
    )  # fmt: skip
    threads = [
        threading.Thread(target=lambda: [out.event_line({"n": i}) for i in range(200)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.close()
    lines = (tmp_path / "o").read_text().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["n"] < 200 for line in lines)


TWINS = (
    "run_command", "get_plugin_docs", "get_plugin_list", "get_inventory", "get_ansible_config",
    "get_role_list", "get_role_argspec",
)  # fmt: skip


@pytest.mark.parametrize("name", TWINS)
def test_each_async_twin_takes_its_helpers_parameters(name: str) -> None:
    sync = getattr(containerrunner, name)
    twin = getattr(containerrunner, f"{name}_async")
    assert twin.__name__ == f"{name}_async" and sync.__name__ == name
    assert inspect.signature(twin).parameters == inspect.signature(sync).parameters
    assert inspect.signature(twin).return_annotation != inspect.signature(sync).return_annotation
    assert sync.__doc__ and f"Like {name}()" in (twin.__doc__ or "")


def test_a_huge_line_before_the_mark_is_cut_with_a_marker_in_bounded_memory() -> None:
    written: list[int] = []
    lines: list[tuple[str, bool]] = []
    stream = OutputStream(lambda text: written.append(len(text)), lambda *a: lines.append(a))
    chunk = "x" * 65536
    for _ in range(64):  # 4 MiB without a newline, then a short line
        stream(chunk)
    stream("tail\nshort\n")
    stream.finish()
    assert sum(written) == 64 * 65536 + len("tail\nshort\n")  # the file gets everything
    (first, newline), second = lines
    assert newline and first.startswith("x" * MAX_VERBOSE_LINE)
    dropped = 64 * 65536 + len("tail") - MAX_VERBOSE_LINE
    assert first[MAX_VERBOSE_LINE:] == (
        f" [containerrunner: line truncated, {dropped} more characters in the stdout file]"
    )
    assert second == ("short", True)
