"""events.py: EventStream over a real FIFO, load_events, stats and host events.

No sleeps and no timed asserts: the writers are joined (threads) or waited for (processes)
before close(), whose contract is to deliver everything written before it was called. A
faulthandler watchdog turns a hang into a traceback instead of a stuck run.
"""

from __future__ import annotations

import faulthandler
import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from containerrunner.errors import ConfigurationError, OutputParseError
from containerrunner.events import (
    STATS_KEYS,
    EventLog,
    EventStream,
    host_events,
    load_events,
    stats_from_events,
)

Event = dict[str, Any]


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _event(counter: int, **extra: Any) -> Event:
    return {"counter": counter, "uuid": f"u{counter}", "event": "verbose", **extra}


def _payload(events: list[Event]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def _write_in_chunks(path: Path, data: bytes, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for start in range(0, len(data), size):
            view = memoryview(data)[start : start + size]
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


WRITER = """
import json, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)  # as the plugin opens it
first, last = int(sys.argv[2]), int(sys.argv[3])
for n in range(first, last + 1):
    event = {"counter": n, "uuid": "u%d" % n, "event": "verbose"}
    os.write(fd, (json.dumps(event) + "\\n").encode())
os.close(fd)
"""


def _writer_process(path: Path, first: int, last: int) -> None:
    subprocess.run([sys.executable, "-c", WRITER, str(path), str(first), str(last)], check=True)


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    def wait_for(self, count: int) -> None:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.events) >= count)

    @property
    def counters(self) -> list[int]:
        return [e["counter"] for e in self.events]


# ---- EventStream ---------------------------------------------------------------------------


def test_stream_delivers_in_order_across_partial_lines(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    expected = [_event(n, stdout="x" * (n * 37)) for n in range(1, 201)]
    writer = threading.Thread(target=_write_in_chunks, args=(stream.path, _payload(expected), 7))
    writer.start()
    writer.join()
    stream.close()
    assert got.events == expected
    assert stream.malformed == []


def test_stream_large_events_do_not_block_writer(tmp_path: Path) -> None:
    # more than a pipe buffer (64 KiB) in one event and in total
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    expected = [_event(n, stdout="y" * 300_000) for n in range(1, 6)]
    writer = threading.Thread(
        target=_write_in_chunks, args=(stream.path, _payload(expected), 1 << 20)
    )
    writer.start()
    writer.join()
    stream.close()
    assert got.counters == [1, 2, 3, 4, 5]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_the_fifo_buffers_a_quarter_megabyte_before_the_writer_waits(tmp_path: Path) -> None:
    # the reader not started: 200 events of 1 KB fit in the kernel's buffer, where the
    # default 64 KiB pipe made the plugin wait for the reader after ~60
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    fd = os.open(stream.path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        expected = [_event(n, stdout="y" * 1000) for n in range(1, 201)]
        data = _payload(expected)
        assert 1 << 17 < len(data) < 1 << 18
        assert os.write(fd, data) == len(data)  # all of it at once, nobody reading
    finally:
        os.close(fd)
    stream.start(got)
    stream.close()
    assert got.counters == list(range(1, 201))


def test_close_when_no_writer_ever_came(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    assert stream.running
    stream.close()
    assert not stream.running
    assert got.events == []
    assert not stream.path.exists()
    stream.close()  # idempotent


def test_close_without_start_cleans_up(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    _write_in_chunks(stream.path, _payload([_event(1)]), 4096)  # fits the pipe buffer
    stream.close()
    assert not stream.path.exists()
    with pytest.raises(RuntimeError):
        stream.start(Collector())


def test_several_writer_processes_then_close(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    _writer_process(stream.path, 1, 40)
    _writer_process(stream.path, 41, 80)
    _writer_process(stream.path, 81, 120)
    stream.close()
    assert got.counters == list(range(1, 121))


def test_no_hangup_and_no_spinning_after_a_writer_leaves(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    _writer_process(stream.path, 1, 1)
    got.wait_for(1)
    # the writer is gone and its data consumed: the read end is neither readable nor hung up
    poller = select.poll()
    poller.register(stream._read_fd, select.POLLIN | select.POLLHUP)
    assert poller.poll(0) == []
    # a second writer, a whole process start later: a reader spinning on POLLHUP would have
    # gone round its loop thousands of times by now
    _writer_process(stream.path, 2, 2)
    got.wait_for(2)
    stream.close()
    assert got.counters == [1, 2]
    assert stream._wakeups <= 10


def test_plugin_can_open_before_start_and_not_after_close(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    fd = os.open(stream.path, os.O_WRONLY | os.O_NONBLOCK)  # a reader exists: no ENXIO
    os.write(fd, _payload([_event(1)]))
    os.close(fd)
    got = Collector()
    stream.start(got)  # events written before start() are delivered too
    stream.close()
    assert got.counters == [1]
    with pytest.raises(FileNotFoundError):
        os.open(stream.path, os.O_WRONLY | os.O_NONBLOCK)


def test_writer_gets_epipe_after_close(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    stream.start(Collector())
    fd = os.open(stream.path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        stream.close()
        with pytest.raises(BrokenPipeError):
            os.write(fd, b"{}\n")
    finally:
        os.close(fd)


def test_last_line_without_newline_is_delivered(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    data = _payload([_event(1)]) + json.dumps(_event(2)).encode()
    _write_in_chunks(stream.path, data, 5)
    stream.close()
    assert got.counters == [1, 2]


def test_malformed_lines_are_skipped_and_recorded(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    got = Collector()
    stream.start(got)
    data = _payload([_event(1)]) + b"not json\n[1, 2]\n\n" + _payload([_event(2)])
    _write_in_chunks(stream.path, data, 3)
    stream.close()
    assert got.counters == [1, 2]
    assert stream.malformed == ["not json", "[1, 2]"]


def test_handler_error_stops_delivery_keeps_reading_and_is_raised(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    seen: list[int] = []

    def handler(event: Event) -> None:
        seen.append(event["counter"])
        if event["counter"] == 2:
            raise ValueError("handler broke")

    stream.start(handler)
    # far more than a pipe buffer after the failure: the writer must still finish
    events = [_event(n, stdout="z" * 10_000) for n in range(1, 51)]
    writer = threading.Thread(target=_write_in_chunks, args=(stream.path, _payload(events), 4096))
    writer.start()
    writer.join()
    with pytest.raises(ValueError, match="handler broke"):
        stream.close()
    assert seen == [1, 2]
    assert not stream.path.exists()


def test_existing_path_that_is_not_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    path.write_text("")
    with pytest.raises(ConfigurationError, match="not a FIFO"):
        EventStream(path)


def test_stale_fifo_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    with EventStream(path) as stream:
        got = Collector()
        stream.start(got)
        _write_in_chunks(path, _payload([_event(1)]), 100)
    assert got.counters == [1]
    assert not path.exists()


def test_fifo_fds_are_not_inherited(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "fifo")
    try:
        for fd in (stream._read_fd, stream._keepalive_fd, stream._wake_r, stream._wake_w):
            assert not os.get_inheritable(fd)
    finally:
        stream.close()


# ---- load_events -----------------------------------------------------------------------------


def _write_event_files(artifact_dir: Path, counters: list[int]) -> None:
    events_dir = artifact_dir / "job_events"
    events_dir.mkdir(parents=True, exist_ok=True)
    for n in counters:
        (events_dir / f"{n}-u{n}.json").write_text(json.dumps(_event(n)))


def test_load_events_orders_by_counter_not_name(tmp_path: Path) -> None:
    _write_event_files(tmp_path, [10, 9, 1, 2, 11, 100, 3])
    events_dir = tmp_path / "job_events"
    (events_dir / ".12-u12.json.tmp").write_text("{partial")  # the plugin's temp file
    (events_dir / "u13-partial.json").write_text("{}")  # ansible-runner's partials
    (events_dir / "notes.txt").write_text("x")
    assert [e["counter"] for e in load_events(tmp_path)] == [1, 2, 3, 9, 10, 11, 100]
    assert [e["counter"] for e in load_events(str(tmp_path))] == [1, 2, 3, 9, 10, 11, 100]


def test_load_events_without_job_events_dir(tmp_path: Path) -> None:
    assert list(load_events(tmp_path)) == []


def test_load_events_corrupt_file_names_it(tmp_path: Path) -> None:
    _write_event_files(tmp_path, [1])
    (tmp_path / "job_events" / "2-u2.json").write_text('{"counter": 2,')
    events = load_events(tmp_path)
    assert next(events)["counter"] == 1
    with pytest.raises(OutputParseError, match=r"2-u2\.json"):
        next(events)


def test_load_events_non_object_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "job_events").mkdir()
    (tmp_path / "job_events" / "1-u1.json").write_text("[]")
    with pytest.raises(OutputParseError, match="JSON object"):
        list(load_events(tmp_path))


# ---- stats and host events -------------------------------------------------------------------

STATS_EVENT: Event = {
    "event": "playbook_on_stats",
    "counter": 9,
    "event_data": {
        "changed": {"host1": 3},
        "dark": {},
        "failures": {"host2": 1},
        "ignored": {"host1": 1},
        "ok": {"host1": 8, "host2": 7},
        "processed": {"host1": 1, "host2": 1},
        "rescued": {},
        "skipped": {"host2": 1},
        "artifact_data": {},
        "playbook": "site.yml",
        "uuid": "x",
    },
}


def test_stats_from_events_has_runner_shape() -> None:
    events = [_event(1, event_data={"host": "host1"}), STATS_EVENT]
    stats = stats_from_events(events)
    assert stats == {
        "skipped": {"host2": 1},
        "ok": {"host1": 8, "host2": 7},
        "dark": {},
        "failures": {"host2": 1},
        "ignored": {"host1": 1},
        "rescued": {},
        "processed": {"host1": 1, "host2": 1},
        "changed": {"host1": 3},
    }
    assert tuple(stats) == STATS_KEYS


def test_stats_from_events_without_stats_event() -> None:
    assert stats_from_events([_event(1)]) is None
    assert stats_from_events([]) is None


def test_stats_with_omitted_event_data_is_all_empty() -> None:
    stats = stats_from_events([{"event": "playbook_on_stats", "event_data": {}}])
    assert stats == {key: {} for key in STATS_KEYS}


def test_host_events() -> None:
    events = [
        _event(1, event_data={"host": "host1"}),
        _event(2, event_data={"host": "host2"}),
        _event(3, event_data={}),
        _event(4),
        _event(5, event_data={"host": "host1"}),
        STATS_EVENT,
    ]
    assert [e["counter"] for e in host_events(events, "host1")] == [1, 5]
    assert host_events(events, "nohost") == []
    assert host_events(iter(events), "host2")[0]["counter"] == 2


def _logged(log: EventLog, counter: int, uuid: str) -> dict[str, Any]:
    event = {"counter": counter, "uuid": uuid, "event": "verbose", "stdout": f"line {counter}"}
    log.write(event)
    log.add(event)
    return event


def test_the_event_log_keeps_numbers_and_uuids_and_reads_events_from_their_files(
    tmp_path: Path,
) -> None:
    """Out of order, duplicated, canonical uuid4s and other uuids: `follow` gives each event
    once in counter order, from its file; `lists` knows exactly the files it wrote."""
    import uuid

    log = EventLog(tmp_path)
    canonical = [str(uuid.uuid4()) for _ in range(3)]
    odd = [
        "u00004", canonical[0].upper(), "00000000-0000-0000-0000-000000000000",
        "{" + canonical[1][1:-1] + "}", canonical[2].replace("-", "0"),
    ]  # fmt: skip
    kept = [
        _logged(log, 5, canonical[0]), _logged(log, 2, odd[0]), _logged(log, 9, canonical[1]),
        _logged(log, 7, odd[1]), _logged(log, 1, canonical[2]), _logged(log, 3, odd[2]),
        _logged(log, 4, odd[3]), _logged(log, 6, odd[4]),
    ]  # fmt: skip
    log.add(dict(kept[0]))  # again: ignored
    assert len(log) == 8
    # a file the plugin wrote itself (its FIFO write failed): added when the log closes
    (tmp_path / "job_events" / "11-late.json").write_text('{"counter": 11, "uuid": "late"}')
    assert log.lists(5, f"5-{canonical[0]}.json") and log.lists(2, "2-u00004.json")
    assert log.lists(4, f"4-{odd[3]}.json") and log.lists(6, f"6-{odd[4]}.json")
    assert not log.lists(5, "5-other.json") and not log.lists(11, "11-late.json")
    log.close()
    got = list(log.follow())
    assert [(e["counter"], e["uuid"]) for e in got] == sorted(
        [(e["counter"], e["uuid"]) for e in kept] + [(11, "late")]
    )
    assert got[0] == kept[4]  # the whole event, read back from its file


def test_an_in_memory_event_log_serves_the_events_themselves(tmp_path: Path) -> None:
    log = EventLog(tmp_path, in_memory=True)
    first = _logged(log, 2, "b")
    second = _logged(log, 1, "a")
    (tmp_path / "job_events" / "2-b.json").unlink()  # artifacts removed: memory still has it
    log.close()
    assert list(log.follow()) == [second, first]


def test_an_event_log_without_files_writes_none_and_serves_every_event(tmp_path: Path) -> None:
    log = EventLog(tmp_path, in_memory=True, files=False)
    first = _logged(log, 1, "a")
    second = _logged(log, 2, "b")
    assert not (tmp_path / "job_events").exists()
    log.close()
    assert list(log.follow()) == [first, second]
    with pytest.raises(ValueError, match="in memory"):
        EventLog(tmp_path, files=False)  # its events could never be read
