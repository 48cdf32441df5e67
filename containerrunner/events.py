"""The job's events: the FIFO stream, job_events/, stats.

The callback plugin (``callback/containerrunner.py``) sends every event as one JSON line on the
FIFO named by ``CONTAINERRUNNER_EVENT_FIFO``; the runner numbers it in stream order (see
``joboutput``) and, when the event handler keeps it, writes it to
``<artifact dir>/job_events/<counter>-<uuid>.json`` (atomically: a hidden temp file renamed into
place; `EventLog.write`). Without a FIFO (or once nobody reads it) the plugin writes the files
itself. The files are the record; the FIFO tells the runner about each event as it happens,
without polling.

How the runner uses :class:`EventStream`::

    stream = EventStream(artifact_dir / "event_fifo")  # mkfifo + open, BEFORE the process
    stream.start(on_event)                             # reader thread
    try:
        ... start Ansible with CONTAINERRUNNER_EVENT_FIFO=<stream.path>, wait for it to exit ...
    finally:
        stream.close()   # wakes the reader, drains what is left, joins, removes the FIFO

``on_event`` is called from the reader thread, in counter order.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import json
import os
import re
import selectors
import stat
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from containerrunner.errors import ConfigurationError, OutputParseError

__all__ = [
    "EVENT_FILE_RE",
    "STATS_KEYS",
    "EventLog",
    "EventStream",
    "host_events",
    "load_events",
    "stats_from_events",
    "unlisted_event_files",
]

Event = dict[str, Any]

#: ``<counter>-<uuid>.json``; the plugin's temp files (``.<name>.tmp``) never match
EVENT_FILE_RE = re.compile(r"^(?P<counter>[0-9]+)-(?P<uuid>[^./][^/]*)\.json$")

#: the events that report a task's result on a host
RESULT_EVENTS = frozenset(
    {
        "runner_on_ok",
        "runner_on_failed",
        "runner_on_skipped",
        "runner_on_unreachable",
        "runner_on_async_ok",
        "runner_on_async_failed",
    }
)
#: the events that start a task (handlers included)
TASK_START_EVENTS = frozenset({"playbook_on_task_start", "playbook_on_handler_task_start"})

#: the keys of ansible-runner's ``Runner.stats``
STATS_KEYS = ("skipped", "ok", "dark", "failures", "ignored", "rescued", "processed", "changed")

_READ_SIZE = 65536
_MALFORMED_KEPT = 100
#: the FIFO's kernel buffer (F_SETPIPE_SZ; Linux's default is 64 KiB, the unprivileged maximum
#: /proc/sys/fs/pipe-max-size is 1 MiB by default): with B1's ~1 KB events the plugin's
#: writes block (Ansible's main thread waits for the runner's reader to be scheduled) only
#: when the reader is ~250 events behind, not ~60. Not 1 MiB: a non-root user's pipes all
#: count against /proc/sys/fs/pipe-user-pages-soft (64 MiB by default), and past it the
#: kernel gives every new pipe of that user (Ansible's and ssh's too) one or two pages; at
#: 256 KiB that takes ~250 jobs at once, not ~60
FIFO_BUFFER = 1 << 18


_UUID_RE = re.compile(r"^[^./\x00][^/\x00]{0,127}$")


def well_formed(event: Any) -> bool:
    """True for an event the runner can number and file: a JSON object whose `counter` is an
    int >= 0, `uuid` a name of at most 128 characters without '/' or NUL nor a leading '.',
    and, when present, `event` a string, `start_line`/`end_line` ints and `event_data` an object."""
    if not isinstance(event, dict):
        return False
    counter, uuid = event.get("counter"), event.get("uuid")
    if not isinstance(counter, int) or isinstance(counter, bool) or counter < 0:
        return False
    if not isinstance(uuid, str) or not _UUID_RE.match(uuid):
        return False
    if not isinstance(event.get("event", ""), str):
        return False
    for key in ("start_line", "end_line"):
        value = event.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            return False
    return isinstance(event.get("event_data", {}), dict)


def event_file_name(event: Mapping[str, Any]) -> str:
    """The name of an event's file in job_events/: `<counter>-<uuid>.json`."""
    return f"{int(event.get('counter', 0))}-{event.get('uuid', '')}.json"


def _numbered_files(
    events_dir: str | os.PathLike[str], skip: Callable[[int, str], bool] | None = None
) -> list[tuple[int, str]]:
    """(counter, name) of the event files in `events_dir`, in counter order; without those
    for which `skip(counter, name)` is true (read as the dir is scanned: the ones already
    known cost no memory at the end of a 100,000-event job)."""
    numbered = []
    try:
        with os.scandir(events_dir) as entries:
            for entry in entries:
                match = EVENT_FILE_RE.match(entry.name)
                if match:
                    counter = int(match["counter"])
                    if skip is None or not skip(counter, entry.name):
                        numbered.append((counter, entry.name))
    except FileNotFoundError:
        return []
    numbered.sort()
    return numbered


def _read_event_file(path: str | os.PathLike[str]) -> Event | None:
    """The event in `path`; None when it is gone (removed meanwhile)."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise OutputParseError(f"job event file {path} is not valid JSON ({exc})", raw) from exc
    if not isinstance(event, dict):
        raise OutputParseError(f"job event file {path} does not hold a JSON object", raw)
    return event


def load_events(artifact_dir: str | os.PathLike[str]) -> Iterator[Event]:
    """Yield the events in ``artifact_dir/job_events/`` in counter order.

    Files that are not named ``<counter>-<uuid>.json`` (the plugin's temp files, anything else)
    are ignored; a missing ``job_events/`` yields nothing. The files are read one at a time.
    A file with the right name that is not a JSON object raises :class:`OutputParseError`
    naming it: the plugin writes by rename, so such a file is damage, not a write in progress.
    """
    events_dir = os.path.join(artifact_dir, "job_events")  # str: no interning of each name
    for _counter, name in _numbered_files(events_dir):
        event = _read_event_file(os.path.join(events_dir, name))
        if event is not None:
            yield event


def unlisted_event_files(
    artifact_dir: str | os.PathLike[str], listed: Callable[[int, str], bool]
) -> list[tuple[Path, Event]]:
    """The event files in ``artifact_dir/job_events/`` for which ``listed(counter, name)`` is
    false, as (path, event) in counter order: the events the plugin wrote itself because its
    FIFO write failed (one directory listing; called once, when the job ends). A damaged file
    is left for :class:`EventLog` (whose readers get an :class:`OutputParseError` naming it)."""
    events_dir = Path(artifact_dir) / "job_events"
    found: list[tuple[Path, Event]] = []
    for _counter, name in _numbered_files(events_dir, skip=listed):
        path = events_dir / name
        try:
            event = _read_event_file(path)
        except OutputParseError:
            continue
        if event is not None and well_formed(event):
            found.append((path, event))
    return found


class EventLog:
    """The events a job kept, in counter order, served to any number of readers.

    The runner `add`s each event the event handler kept, as it arrives; at the end `close`
    adds the event files that never came through the stream (the files are the record) and
    wakes every reader. A reader (`follow`) waits for new events without polling and reads
    each event once, from its file: like ansible-runner's readers of job_events/, nothing of an
    event stays in memory but its number and uuid (8 + 16 bytes for the plugin's uuid4s, in
    flat arrays: a 100,000-event job costs the log ~2.4 MB). With `in_memory` (a job whose
    artifacts are removed when it ends) the log holds the events themselves; with `files`
    False as well (artifacts nobody else can read before they are removed: a synchronous
    helper's temporary dir, see `Runner.unobserved`) `write` writes no file.
    """

    def __init__(
        self, artifact_dir: str | os.PathLike[str], in_memory: bool = False, files: bool = True
    ) -> None:
        if not files and not in_memory:
            raise ValueError("an EventLog without files keeps its events in memory")
        self.events_dir = Path(artifact_dir) / "job_events"
        self._dir = str(self.events_dir)  # str joins: pathlib would intern every file name
        self.in_memory = in_memory
        self.files = files
        self._counters = array("q")  # sorted
        self._uuids = bytearray()  # 16 bytes per counter: the uuid's bytes, or zeros (_odd)
        self._odd: dict[int, str] = {}  # counter -> a uuid that is not a canonical uuid4 text
        self._events: list[Event] = []  # in_memory: the events, parallel to _counters
        self._closed = False
        self._made = False
        self._changed = threading.Condition()

    def write(self, event: Event) -> None:
        """Write `event` to its file in job_events/ (by rename: never seen half-written);
        nothing without `files`."""
        if not self.files:
            return
        name = event_file_name(event)
        final = os.path.join(self._dir, name)
        temp = os.path.join(self._dir, f".{name}.tmp")
        if not self._made:
            self.events_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._made = True
        # json.dumps, not json.dump: dump streams through the pure-Python encoder (~10x the
        # CPU); one os.write of the bytes, no text-file object per event
        data = memoryview(json.dumps(event).encode("utf-8"))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
            os.rename(temp, final)
        except BaseException:  # a full disk: no half-written file is left behind
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def add(self, event: Event) -> None:
        counter = int(event.get("counter", 0))
        with self._changed:
            self._insert(counter, str(event.get("uuid", "")), event)
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._counters)

    def _insert(self, counter: int, uuid_text: str, event: Event | None) -> None:
        if self._counters and counter <= self._counters[-1]:
            index = bisect.bisect_left(self._counters, counter)
            if index < len(self._counters) and self._counters[index] == counter:
                return
        else:
            index = len(self._counters)
        key = _uuid_bytes(uuid_text)
        if key is None:
            self._odd[counter] = uuid_text
            key = _ZERO_UUID
        if index == len(self._counters):
            self._counters.append(counter)
            self._uuids += key
            if self.in_memory and event is not None:
                self._events.append(event)
            return
        self._counters.insert(index, counter)
        self._uuids[16 * index : 16 * index] = key
        if self.in_memory and event is not None:
            self._events.insert(index, event)

    def _has(self, counter: int, name: str = "") -> bool:
        """Whether the log holds an event numbered `counter` (the lock held)."""
        index = bisect.bisect_left(self._counters, counter)
        return index < len(self._counters) and self._counters[index] == counter

    def _name(self, index: int) -> str:
        counter = self._counters[index]
        odd = self._odd.get(counter)
        if odd is None:
            h = self._uuids[16 * index : 16 * index + 16].hex()
            odd = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"  # str(UUID(bytes=...))
        return f"{counter}-{odd}.json"

    def lists(self, counter: int, name: str) -> bool:
        """True when the log holds the event written to job_events/`name` (numbered `counter`)."""
        with self._changed:
            index = bisect.bisect_left(self._counters, counter)
            if index >= len(self._counters) or self._counters[index] != counter:
                return False
            return self._name(index) == name

    def close(self) -> None:
        """Add the files the stream did not deliver (the plugin wrote them); wake readers."""
        with self._changed:
            for counter, name in _numbered_files(self.events_dir, skip=self._has):
                match = EVENT_FILE_RE.match(name)
                if match is None:  # cannot be: _numbered_files matched it
                    continue
                event: Event | None = None
                if self.in_memory:
                    event = _read_event_file(os.path.join(self._dir, name))
                    if event is None:
                        continue
                self._insert(counter, match["uuid"], event)
            self._closed = True
            self._changed.notify_all()

    def abandon(self) -> None:
        """End the log without reading any file (the job never started); wake readers."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def follow(self) -> Iterator[Event]:
        """Every event in counter order; while the log is open, waits for the next one."""
        last: int | None = None
        while True:
            with self._changed:
                index = 0 if last is None else bisect.bisect_right(self._counters, last)
                while index >= len(self._counters) and not self._closed:
                    self._changed.wait()
                    index = 0 if last is None else bisect.bisect_right(self._counters, last)
                if index >= len(self._counters):
                    return
                last = self._counters[index]
                if self.in_memory:
                    event: Event | None = self._events[index]
                else:
                    name = self._name(index)
            if not self.in_memory:
                event = _read_event_file(os.path.join(self._dir, name))
            if event is not None:
                yield event


_ZERO_UUID = bytes(16)


#: a uuid's canonical text (what str(uuid.UUID) gives: lower-case hex, dashes at 8-4-4-4-12)
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid_bytes(text: str) -> bytes | None:
    """The 16 bytes of `text` when it is a uuid in its canonical text form (the plugin's
    uuid4s), so that `str(UUID(bytes=...))` gives `text` back; else None. (A regex and
    bytes.fromhex: a UUID object and its text again cost 3x as much, once per event.)"""
    if len(text) != 36 or _CANONICAL_UUID.fullmatch(text) is None:
        return None
    value = bytes.fromhex(text.replace("-", ""))
    return None if value == _ZERO_UUID else value


def stats_from_events(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]] | None:
    """The play recap in ansible-runner's ``Runner.stats`` shape, or None without one.

    Each of :data:`STATS_KEYS` maps host -> count, from the (last) ``playbook_on_stats`` event.
    """
    data: Mapping[str, Any] | None = None
    for event in events:
        if event.get("event") == "playbook_on_stats":
            event_data = event.get("event_data")
            data = event_data if isinstance(event_data, Mapping) else {}
    if data is None:
        return None
    stats: dict[str, dict[str, int]] = {}
    for key in STATS_KEYS:
        value = data.get(key)
        stats[key] = dict(value) if isinstance(value, Mapping) else {}
    return stats


def host_events(events: Iterable[Mapping[str, Any]], host: str) -> list[Event]:
    """The events whose ``event_data.host`` is ``host``, in the order given."""
    found: list[Event] = []
    for event in events:
        event_data = event.get("event_data")
        if isinstance(event_data, Mapping) and event_data.get("host") == host:
            found.append(dict(event))
    return found


def _grow_pipe(fd: int, size: int = FIFO_BUFFER) -> None:
    """Give the pipe behind `fd` a buffer of `size` bytes (the size is the pipe's: its
    writers, in a container too, get it). Only a hint: left as it is where the kernel refuses
    (above /proc/sys/fs/pipe-max-size, or a user over /proc/sys/fs/pipe-user-pages-soft)."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:  # not Linux
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, setpipe, size)


class EventStream:
    """Receives the plugin's events through a FIFO, in a reader thread, without polling.

    The constructor creates the FIFO (``os.mkfifo``, mode 0600) and opens its read end, plus a
    write end of its own that is never written: so the plugin's non-blocking open finds a
    reader, and the read end never reports hang-up when a writer closes (on Linux POLLHUP would
    otherwise stay set after the last writer left and the reader would spin). The end of the
    stream is therefore not EOF but :meth:`close`, which writes to a private wake-up pipe.
    The FIFO's buffer is grown to :data:`FIFO_BUFFER` where the kernel allows it, so the
    plugin rarely waits for the reader (each event still reaches the kernel when its callback
    returns: a killed Ansible loses no complete event).

    The reader thread blocks in a selector on the FIFO and the wake-up pipe, reads what is
    there, splits it into lines (a partial line is kept until its end arrives) and calls
    ``on_event`` for each JSON line, in order. Lines that are not a :func:`well_formed` event
    are skipped and kept in :attr:`malformed` (the event files remain the record). The plugin
    starts each record with a newline too, so a line cut short (its writer killed mid-write)
    is ended by the next record instead of swallowing it. If ``on_event`` raises, no
    further events are delivered (the FIFO is still read so the writer never blocks) and
    :meth:`close` re-raises the exception.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.malformed: list[str] = []
        self._buffer = b""
        self._handler: Callable[[Event], None] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wakeups = 0  # reader loop iterations (tests: proves the reader does not spin)
        self._make_fifo()
        fds: list[int] = []
        try:
            self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            fds.append(self._read_fd)
            self._keepalive_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            fds.append(self._keepalive_fd)
            _grow_pipe(self._read_fd)
            self._wake_r, self._wake_w = os.pipe()
        except BaseException:
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise

    def _make_fifo(self) -> None:
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            mode = self.path.lstat().st_mode
            if not stat.S_ISFIFO(mode):
                raise ConfigurationError(
                    f"event FIFO path {self.path} exists and is not a FIFO; "
                    "remove it or choose another path"
                ) from None
            # a FIFO left behind by an earlier run: nobody else may read it, make it ours
            self.path.unlink()
            os.mkfifo(self.path, 0o600)

    @property
    def error(self) -> BaseException | None:
        """The exception ``on_event`` (or the reader) raised; no event was delivered after it."""
        return self._error

    @property
    def running(self) -> bool:
        """True while the reader thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, on_event: Callable[[Event], None]) -> None:
        """Start the reader thread; ``on_event`` is called from it for each event."""
        if self._closed:
            raise RuntimeError("EventStream.start() after close()")
        if self._thread is not None:
            raise RuntimeError("EventStream.start() called twice")
        self._handler = on_event
        self._thread = threading.Thread(
            target=self._run, name=f"containerrunner-events:{self.path.name}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Deliver what is left in the FIFO, stop the reader, remove the FIFO.

        Call it after the process that writes events has exited. Idempotent. Re-raises the
        exception ``on_event`` raised, if any.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._thread is not None:
                os.write(self._wake_w, b"x")
                self._thread.join()
            else:  # never started: nobody to deliver to, just empty the pipe
                self._drain()
        finally:
            for fd in (self._read_fd, self._keepalive_fd, self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- reader thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # an unexpected OSError: close() re-raises it
            if self._error is None:
                self._error = exc

    def _loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._read_fd, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _mask in selector.select()}
                self._wakeups += 1
                if self._read_fd in ready:
                    self._drain(to_end=False)
                if self._wake_r in ready:
                    # the writer has exited: everything it wrote is in the pipe now
                    self._drain()
                    self._finish()
                    return

    def _drain(self, to_end: bool = True) -> None:
        """Read until the FIFO is empty (EAGAIN: our keep-alive writer means no EOF).

        Not `to_end` (the selector said readable): stop after a read shorter than asked,
        which emptied the FIFO a moment ago; what comes later makes the FIFO readable again
        (the selector is level-triggered), so no EAGAIN read per wake-up.
        """
        while True:
            try:
                chunk = os.read(self._read_fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not chunk:  # cannot happen while the keep-alive end is open; be safe anyway
                return
            self._feed(chunk)
            if not to_end and len(chunk) < _READ_SIZE:
                return

    def _feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        if b"\n" not in chunk:
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._line(line)

    def _finish(self) -> None:
        if self._buffer.strip():  # a last line without its newline
            self._line(self._buffer)
        self._buffer = b""

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not well_formed(event):
            if len(self.malformed) < _MALFORMED_KEPT:
                self.malformed.append(line[:200].decode("utf-8", "replace"))
            return
        if self._handler is None or self._error is not None:
            return
        try:
            self._handler(event)
        except BaseException as exc:  # handed to close()
            self._error = exc
