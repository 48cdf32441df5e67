"""A job's output streams: every copy of them, and the events in the order they were printed.

Each stream of the process (stdout, and stderr when it is not merged into stdout) goes to
its artifact file (unless `suppress_output_file`), to the caller's `output_fd`/`error_fd`
when given, else to `sys.stdout` unless `quiet` (ansible-runner's echo, stderr included).

The callback plugin writes :data:`OUTPUT_MARK` on stdout and stderr when it loads, before its
first event. What a stream carried before that mark belongs to no event: the engine's own
errors, Ansible's command-line errors (a YAML error in the playbook), `--version`, the whole
output of a command that loads no plugin. As in ansible-runner, each such line becomes a
`verbose` event, and the plugin's events are numbered after them: :class:`EventSequencer`
holds the plugin's events back until every stream it watches has shown the mark (or ended),
then shifts their `counter`, `start_line` and `end_line` past the verbose lines. A stream
that goes to the caller's own fd makes no verbose events (ansible-runner does not read it).
The mark is removed from every copy.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from containerrunner.errors import ArtifactWriteError
from containerrunner.validate import new_uuid4

Event = dict[str, Any]

#: what the callback plugin writes when it loads (an APC string: invisible on a terminal)
OUTPUT_MARK = "\x1b_containerrunner-events\x1b\\"
#: the key under which the stats event's FIFO line carries the play recap
STATS_KEY = "containerrunner_stats"
#: the key under which the first event's FIFO line carries the ansible-core version
ANSIBLE_VERSION_KEY = "containerrunner_ansible_version"


#: the characters of one line kept in its verbose event; the rest is only in the artifact file
MAX_VERBOSE_LINE = 1 << 20


def _cut_marker(dropped: int) -> str:
    return f" [containerrunner: line truncated, {dropped} more characters in the stdout file]"


def _held_length(text: str) -> int:
    """How much of the end of `text` may be the start of a mark split across two chunks."""
    first = max(0, len(text) - len(OUTPUT_MARK) + 1)
    for start in range(first, len(text)):
        if text[start] == "\x1b" and OUTPUT_MARK.startswith(text[start:]):
            return len(text) - start
    return 0


class OutputStream:
    """One output stream of the process, used as the process backend's sink.

    `write` gets the text without marks; before the first mark, `on_line(line, newline)` gets
    each line (a last partial one when the mark or the end comes), and the first mark (or
    :meth:`finish`) calls `on_mark`. A line longer than :data:`MAX_VERBOSE_LINE` is passed on
    cut there, with a marker saying how much more the file has: memory stays bounded however
    long a line the process writes.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        on_line: Callable[[str, bool], None] | None = None,
        on_mark: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._on_line = on_line
        self._on_mark = on_mark
        self._marked = False
        self._held = ""  # a possible beginning of the mark
        self._line = ""  # the partial line before the mark (at most MAX_VERBOSE_LINE)
        self._dropped = 0  # characters of that line beyond MAX_VERBOSE_LINE

    def __call__(self, text: str) -> None:
        text = self._held + text
        self._held = ""
        if "\x1b" in text:
            while (index := text.find(OUTPUT_MARK)) >= 0:
                self._text(text[:index])
                text = text[index + len(OUTPUT_MARK) :]
                self._mark()
            held = _held_length(text)
            if held:
                text, self._held = text[:-held], text[-held:]
        self._text(text)

    def _text(self, text: str) -> None:
        if not text:
            return
        self._write(text)
        if self._marked or self._on_line is None:
            return
        if "\n" not in text:
            self._grow(text)
            return
        first, *lines, last = text.split("\n")
        self._grow(first)
        self._end_line(True)
        for line in lines:
            self._grow(line)
            self._end_line(True)
        self._grow(last)

    def _grow(self, text: str) -> None:
        room = MAX_VERBOSE_LINE - len(self._line)
        if len(text) > room:
            self._dropped += len(text) - max(room, 0)
            text = text[: max(room, 0)]
        if text:
            self._line += text

    def _end_line(self, newline: bool) -> None:
        line = self._line.rstrip("\r")
        if self._dropped:
            line += _cut_marker(self._dropped)
        self._line, self._dropped = "", 0
        if self._on_line is not None:
            self._on_line(line, newline)

    def _mark(self) -> None:
        if self._marked:
            return
        if (self._line or self._dropped) and self._on_line is not None:
            self._end_line(False)
        self._line, self._dropped = "", 0
        self._marked = True
        if self._on_mark is not None:
            self._on_mark()

    def finish(self) -> None:
        """The stream ended: what was held back is written, a partial line made an event."""
        held, self._held = self._held, ""
        self._text(held)
        self._mark()


class EventSequencer:
    """Numbers a job's events in the order they were printed; see the module docstring.

    `deliver` gets every event, numbered, in counter order: the verbose lines at once, the
    plugin's events once `streams` streams have called :meth:`stream_marked` (or after
    :meth:`close`). Thread-safe: the verbose lines come from the thread reading the process,
    the plugin's events from the FIFO reader.
    """

    def __init__(self, deliver: Callable[[Event], None], ident: str, streams: int) -> None:
        self._deliver = deliver
        self._ident = ident
        self._waiting = streams
        self._held: list[Event] = []
        self._count = 0  # verbose events so far
        self._lines = 0  # their lines
        self._lock = threading.Lock()

    def verbose(self, line: str, newline: bool) -> None:
        with self._lock:
            self._count += 1
            end = self._lines + (1 if newline else 0)
            event: Event = {
                "uuid": new_uuid4(),
                "counter": self._count,
                "stdout": line,
                "start_line": self._lines,
                "end_line": end,
                "runner_ident": self._ident,
                "event": "verbose",
                "created": datetime.datetime.now(datetime.UTC).isoformat(),
                "event_data": {},
            }
            self._lines = end
            self._deliver(event)

    def stream_marked(self) -> None:
        with self._lock:
            self._waiting -= 1
            if self._waiting == 0:
                self._release()

    def close(self) -> None:
        """No more verbose lines: deliver what is held, and every later event at once."""
        with self._lock:
            self._waiting = 0
            self._release()

    def plugin_event(self, event: Event) -> None:
        with self._lock:
            if self._waiting > 0:
                self._held.append(event)
                return
            self._deliver(self._shifted(event))

    def shifted(self, event: Event) -> Event:
        """`event` (a plugin event) numbered past the verbose lines; after :meth:`close`."""
        with self._lock:
            return self._shifted(event)

    def _release(self) -> None:
        held, self._held = self._held, []
        for event in held:
            self._deliver(self._shifted(event))

    def _shifted(self, event: Event) -> Event:
        if self._count:
            event["counter"] = int(event.get("counter", 0)) + self._count
            for key in ("start_line", "end_line"):
                event[key] = int(event.get(key, 0)) + self._lines
        return event


Tap = Callable[[str, str], None]


class _Copies:
    """Writes one stream's text to each of its copies, under the job's output lock; `tap`
    gets (stream name, text) first."""

    def __init__(
        self,
        lock: threading.Lock,
        file: IO[str] | None,
        caller: Any,
        echo: bool,
        tap: Tap | None = None,
        name: str = "stdout",
    ):
        self._lock = lock
        self._file = file
        self._caller = caller
        self._echo = echo and caller is None
        self._tap = tap
        self._name = name

    def __call__(self, text: str) -> None:
        if self._tap is not None:
            self._tap(self._name, text)
        with self._lock:
            if self._file is not None:
                try:
                    self._file.write(text)
                    self._file.flush()
                except OSError as exc:
                    directory = os.path.dirname(self._file.name)
                    raise ArtifactWriteError(directory, f"the job's {self._name}", exc) from exc
            if self._caller is not None:
                if isinstance(self._caller, int):
                    os.write(self._caller, text.encode("utf-8", "replace"))
                else:
                    self._caller.write(text)
                    self._caller.flush()
            if self._echo:
                sys.stdout.write(text)
                sys.stdout.flush()


class JobOutput:
    """The sinks for a job's stdout and stderr, the event numbering, the JSON-mode lines.

    `merged`: stderr arrives on stdout (a pty). `deliver` gets each numbered event; `tap`
    each chunk of output as (stream name, text), the marks removed.
    :meth:`finish` once the process has ended, :meth:`close` after the last event came.
    """

    def __init__(
        self,
        stdout_path: str | os.PathLike[str],
        stderr_path: str | os.PathLike[str],
        *,
        ident: str,
        deliver: Callable[[Event], None],
        merged: bool,
        write_files: bool = True,
        output_fd: Any = None,
        error_fd: Any = None,
        quiet: bool = True,
        json_mode: bool = False,
        tap: Tap | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._json_mode = json_mode
        self._dir = os.path.dirname(os.fspath(stdout_path))
        with contextlib.ExitStack() as opening:
            out_file = opening.enter_context(open(stdout_path, "w", encoding="utf-8"))
            err_file = opening.enter_context(open(stderr_path, "w", encoding="utf-8"))
            self._files = opening.pop_all()  # closed by close(), after the last event
        self._out = _Copies(
            self._lock, out_file if write_files else None, output_fd, not quiet, tap, "stdout"
        )
        err = _Copies(
            self._lock, err_file if write_files else None, error_fd, not quiet, tap, "stderr"
        )
        watch_out = output_fd is None
        watch_err = not merged and error_fd is None
        self.sequencer = EventSequencer(deliver, ident, int(watch_out) + int(watch_err))
        self.stdout = self._stream(self._out, watch_out)
        self.stderr = self._stream(err, watch_err)

    def _stream(self, copies: _Copies, watched: bool) -> OutputStream:
        if not watched:
            return OutputStream(copies)
        return OutputStream(copies, self.sequencer.verbose, self.sequencer.stream_marked)

    def event_line(self, event: Event) -> None:
        """JSON mode: the event as one line of stdout, in place of its text."""
        if self._json_mode:
            self._out(json.dumps(event) + "\n")

    def finish(self) -> None:
        """The process ended: flush both streams, deliver the held events."""
        try:
            self.stdout.finish()
            self.stderr.finish()
        finally:
            self.sequencer.close()

    def close(self) -> None:
        try:
            self._files.close()
        except OSError as exc:  # what was still buffered did not fit
            raise ArtifactWriteError(self._dir, "the job's output", exc) from exc
