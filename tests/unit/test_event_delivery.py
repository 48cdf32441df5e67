"""Issue 11, item 2: every event is delivered to `event_handler` exactly once, in counter order,
whatever happened to the FIFO.

The real Runner, EventStream and process backend run a scripted writer (`WRITER`, a plain Python
process speaking the plugin's protocol: the output mark, one newline-framed JSON line per event
on the FIFO, the event's own file when a FIFO write failed) that injects each fault: a lost line
(a write that fails half-way; the writer falls back to files, as the plugin does), a writer
killed mid-line with another writer after it, a reader that fell behind (the handler holds the
reader until the kernel shows the writer blocked in a write to the full FIFO). Each run starts
with two lines before the mark, so the plugin's events are numbered past two verbose events.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from containerrunner.config.execution import ExecutionOptions
from containerrunner.events import EventStream, load_events
from containerrunner.job import Job
from containerrunner.runner import Runner
from containerrunner.tempdirs import runtime_dir_path

Event = dict[str, Any]

WRITER = r"""
import json, os, signal, sys

MARK = "\x1b_containerrunner-events\x1b\\"
mode, count, fault_at, pad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
events_dir = os.path.join(os.environ["CONTAINERRUNNER_ARTIFACT_DIR"], "job_events")
print("before the plugin (stdout)", flush=True)
print("before the plugin (stderr)", file=sys.stderr, flush=True)
sys.stdout.write(MARK); sys.stdout.flush(); sys.stderr.write(MARK); sys.stderr.flush()
fd = os.open(os.environ["CONTAINERRUNNER_EVENT_FIFO"], os.O_WRONLY)

def event(n):
    return {"uuid": "u%05d" % n, "counter": n, "event": "runner_on_ok", "pid": os.getpid(),
            "stdout": "line %d" % n, "start_line": n - 1, "end_line": n,
            "runner_ident": "", "event_data": {"pad": "x" * pad}}

def write_all(data):
    while data:
        data = data[os.write(fd, data):]

def write_file(ev):
    os.makedirs(events_dir, exist_ok=True)
    name = "%d-%s.json" % (ev["counter"], ev["uuid"])
    temp = os.path.join(events_dir, "." + name + ".tmp")
    with open(temp, "w") as handle:
        json.dump(ev, handle)
    os.rename(temp, os.path.join(events_dir, name))

broken = False
for n in range(1, count + 1):
    ev = event(n)
    print("line %d" % n, flush=True)
    line = ("\n" + json.dumps(ev) + "\n").encode()
    if n == fault_at and mode == "lost":  # the write fails half-way: the plugin falls back
        write_all(line[: len(line) // 2])
        broken = True
    if broken:
        write_file(ev)
        continue
    if n == fault_at and mode == "killed":  # a writer dies mid-line, another one goes on
        child = os.fork()
        if child == 0:
            write_all(line[: len(line) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        os.waitpid(child, 0)
        continue  # event n is lost with its writer: no line, no file
    write_all(line)
"""


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _run(
    tmp_path: Path,
    mode: str,
    count: int,
    fault_at: int = 0,
    pad: int = 10,
    handler: Any = None,
) -> tuple[Runner, list[Event]]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    job = Job(
        command=(sys.executable, str(script), mode, str(count), str(fault_at), str(pad)),
        execution=ExecutionOptions(host_cwd=str(tmp_path)),
        ident="job1",
        artifact_base=str(tmp_path / "art"),
        runtime_dir=runtime_dir_path("job1"),
        events=True,
    )
    seen: list[Event] = []

    def keep(event: Event) -> bool:
        seen.append(event)
        if handler is not None:
            handler(event)
        return True

    runner = Runner(SimpleNamespace(job=job), event_handler=keep)
    status, rc = runner.run()
    assert (status, rc) == ("successful", 0), runner.stderr.read()
    return runner, seen


def _check_complete(runner: Runner, seen: list[Event], plugin_counters: list[int]) -> None:
    """Delivered once each, in counter order, numbered past the 2 verbose lines, every file
    in job_events/ delivered (and every delivered event has its file)."""
    counters = [e["counter"] for e in seen]
    assert counters == sorted(set(counters)), "not once each in counter order"
    assert [e["event"] for e in seen[:2]] == ["verbose", "verbose"]
    plugin = [e for e in seen if e["event"] != "verbose"]
    assert [e["uuid"] for e in plugin] == [f"u{n:05d}" for n in plugin_counters]
    assert [e["counter"] for e in plugin] == [n + 2 for n in plugin_counters]
    on_disk = list(load_events(runner.artifact_dir))
    assert [(e["counter"], e["uuid"]) for e in on_disk] == [(e["counter"], e["uuid"]) for e in seen]
    assert [(e["counter"], e["uuid"]) for e in runner.events] == [
        (e["counter"], e["uuid"]) for e in seen
    ]


def test_no_fault_every_event_once_in_order(tmp_path: Path) -> None:
    runner, seen = _run(tmp_path, "none", 50)
    _check_complete(runner, seen, list(range(1, 51)))


def test_lost_line_the_files_after_it_are_delivered_once_in_order(tmp_path: Path) -> None:
    runner, seen = _run(tmp_path, "lost", 50, fault_at=20)
    _check_complete(runner, seen, list(range(1, 51)))
    # the plugin's own files (numbered 20.. before the shift) were replaced by the runner's
    names = sorted(os.listdir(Path(runner.artifact_dir) / "job_events"))
    assert len(names) == 52 and "20-u00020.json" not in names and "22-u00020.json" in names
    assert runner.stats is None  # no stats event: nothing invented


def test_lost_line_handler_that_drops_the_file_events_leaves_no_file(tmp_path: Path) -> None:
    script_dir = tmp_path
    (script_dir / "writer.py").write_text(WRITER)
    seen: list[int] = []

    def handler(event: Event) -> bool:
        seen.append(event["counter"])
        return event["counter"] <= 10  # keep the first 10 only

    job = Job(
        command=(sys.executable, str(script_dir / "writer.py"), "lost", "30", "5", "10"),
        execution=ExecutionOptions(host_cwd=str(tmp_path)),
        ident="job1",
        artifact_base=str(tmp_path / "art"),
        runtime_dir=runtime_dir_path("job1"),
        events=True,
    )
    runner = Runner(SimpleNamespace(job=job), event_handler=handler)
    assert runner.run() == ("successful", 0)
    assert seen == list(range(1, 33))
    assert [e["counter"] for e in load_events(runner.artifact_dir)] == list(range(1, 11))
    assert [e["counter"] for e in runner.events] == list(range(1, 11))


def test_writer_killed_mid_line_does_not_swallow_the_next_lines(tmp_path: Path) -> None:
    runner, seen = _run(tmp_path, "killed", 40, fault_at=15)
    expected = [n for n in range(1, 41) if n != 15]  # 15 died with its writer
    _check_complete(runner, seen, expected)


def _blocked_in_pipe_write(pid: int) -> bool:
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def test_reader_that_falls_behind_blocks_the_writer_and_loses_nothing(tmp_path: Path) -> None:
    """The handler holds the reader on the first event until the kernel shows the writer
    blocked writing to the full FIFO (the writer has 1 MB to write, the FIFO holds 64 kB)."""
    blocked = threading.Event()

    def hold(event: Event) -> None:
        if event["event"] != "verbose" and not blocked.is_set():
            pid = int(event["pid"])
            for _ in range(60_000):  # waits on the kernel's state; gives up after ~60 s
                if _blocked_in_pipe_write(pid):
                    blocked.set()
                    return
                threading.Event().wait(0.001)
            raise AssertionError("the writer never blocked on the full FIFO")

    runner, seen = _run(tmp_path, "none", 250, pad=4000, handler=hold)
    assert blocked.is_set()
    _check_complete(runner, seen, list(range(1, 251)))


def test_malformed_lines_between_records_are_skipped_not_the_records(tmp_path: Path) -> None:
    """Garbage on the FIFO (a partial record, binary, a JSON non-object) costs only itself."""
    got: list[Event] = []
    stream = EventStream(tmp_path / "fifo")
    stream.start(got.append)
    fd = os.open(stream.path, os.O_WRONLY)
    records = [json.dumps({"counter": n, "uuid": f"u{n}"}) for n in range(1, 6)]
    os.write(fd, b'\n{"counter": 99, "uu')  # cut short
    os.write(fd, ("\n" + records[0] + "\n").encode())
    os.write(fd, b"\n\xff\xfe\x00binary\n")
    os.write(fd, ("\n" + records[1] + "\n").encode())
    os.write(fd, b"\n[1, 2]\n\n42\n")
    for record in records[2:]:
        os.write(fd, ("\n" + record + "\n").encode())
    os.write(fd, b'{"counter": 100')  # the last writer died mid-line
    os.close(fd)
    stream.close()
    assert [e["counter"] for e in got] == [1, 2, 3, 4, 5]
    assert len(stream.malformed) == 5
