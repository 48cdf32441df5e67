"""The part of the lifecycle both backends share: waiting for output or exit, signals, reaping.

A backend starts one child in a new session (so its pid is also its process group id), reads
its output through one selector, and learns of its exit without reaping it: a pidfd in the
same selector where the platform has one (Linux >= 5.3), else a `waitid(WNOWAIT)` check on a
short tick. Because the child stays a zombie until `reap()`, signalling its process group is
never racing against pid reuse.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import select
import selectors
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from containerrunner.isolation.types import Invocation
from containerrunner.process.controls import ProcessControls, Sink

log = logging.getLogger(__name__)

READ_SIZE = 65536
# Without a pidfd, how often a waiting backend checks whether the child has exited.
EXIT_POLL_INTERVAL = 0.25
# After the child exits, how long output is still read while something it started keeps the
# streams open (a background process that inherited them).
DRAIN_GRACE = 2.0

_EXIT = object()  # selector key data of the pidfd


@dataclass(frozen=True)
class _Wakeup:
    """Selector key data of an extra fd: `on_ready()` is called when it is readable."""

    on_ready: Callable[[], None]


def write_all(fd: int, data: bytes, stop_r: int) -> bool:
    """Write `data` to the non-blocking `fd`, waiting for room with select(); False when a
    byte on `stop_r` said to stop first (so a writer thread never blocks on a full pipe or pty).
    """
    view = memoryview(data)
    while view:
        ready, _writable, _ = select.select([stop_r], [fd], [])
        if ready:
            return False
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]
    return True


@dataclass
class Stream:
    """One output stream of the child: its fd, an incremental utf-8 decoder and its sink."""

    fd: int
    sink: Sink | None
    decoder: codecs.IncrementalDecoder

    @classmethod
    def of(cls, fd: int, sink: Sink | None) -> Stream:
        return cls(fd, sink, codecs.getincrementaldecoder("utf-8")(errors="replace"))


class Backend(ABC):
    """One child process and its streams; `lifecycle.run_process` drives it.

    Subclasses implement `start` (spawn, then `_watch(...)`), `_reap` (exit status of an
    exited child) and `_close_io`; `_read` (one readable stream) reads a pipe unless overridden.
    """

    #: signal_group() reaches the process in its container (not a local engine client)
    signals_in_container = False

    def __init__(self, inv: Invocation, controls: ProcessControls) -> None:
        self.inv = inv
        self.controls = controls
        self.pid = -1
        # muted: output is still read (so the child never blocks on a full pipe) but no sink
        # is called; set once a sink or the caller's thread raised. stopping: the job is being
        # stopped (no more prompt answers, no more stdin).
        self.muted = False
        self.stopping = False
        self._selector = selectors.DefaultSelector()
        self._open_streams = 0
        self._pidfd: int | None = None
        self._exited_at: float | None = None
        self._rc: int | None = None

    # -- to implement -------------------------------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Start the child (in a new session) and register its streams; sets `pid`."""

    def _read(self, stream: Stream) -> bool:
        """Read what is available on `stream`; True when bytes came, False at EOF. This is
        a pipe's read; a pty's EOF differs (PtyBackend)."""
        data = os.read(stream.fd, READ_SIZE)
        if not data:
            self._end_of(stream)
            return False
        self._emit(stream, stream.decoder.decode(data))
        return True

    @abstractmethod
    def _reap(self) -> int:
        """Wait for the exited child and return its rc (negative: killed by that signal)."""

    @abstractmethod
    def _close_io(self) -> None:
        """Close the streams and join helper threads."""

    # -- shared -------------------------------------------------------------------------------

    def _watch(self, streams: list[Stream]) -> None:
        """Register the output streams and an exit watch for `self.pid`."""
        for stream in streams:
            self._selector.register(stream.fd, selectors.EVENT_READ, stream)
            self._open_streams += 1
        pidfd_open: Callable[[int], int] | None = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self._pidfd = pidfd_open(self.pid)
            except OSError:  # an old kernel, or seccomp forbids it
                self._pidfd = None
            else:
                self._selector.register(self._pidfd, selectors.EVENT_READ, _EXIT)

    def watch_fd(self, fd: int, on_ready: Callable[[], None]) -> None:
        """Wake `pump()` when `fd` is readable and call `on_ready()` (which must read it or
        `unwatch_fd` it); the caller owns `fd` and unwatches it before closing it."""
        self._selector.register(fd, selectors.EVENT_READ, _Wakeup(on_ready))

    def unwatch_fd(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)

    def _end_of(self, stream: Stream) -> None:
        self._selector.unregister(stream.fd)
        self._open_streams -= 1
        self._emit(stream, stream.decoder.decode(b"", final=True))

    def _emit(self, stream: Stream, text: str) -> None:
        if text and stream.sink is not None and not self.muted:
            stream.sink(text)

    @property
    def exited(self) -> bool:
        return self._exited_at is not None

    @property
    def finished(self) -> bool:
        """The child has exited and its output is read (or the drain grace is over)."""
        if self._exited_at is None:
            return False
        return self._open_streams == 0 or time.monotonic() >= self._exited_at + DRAIN_GRACE

    def pump(self, timeout: float | None) -> bool:
        """Wait up to `timeout` s (None: indefinitely) for output or exit, and handle it.

        Output goes to the sinks in this thread (an exception in a sink comes out of here).
        Returns True when output came.
        """
        if self._exited_at is not None:
            drain_left = max(0.0, self._exited_at + DRAIN_GRACE - time.monotonic())
            timeout = drain_left if timeout is None else min(timeout, drain_left)
        elif self._pidfd is None:
            timeout = EXIT_POLL_INTERVAL if timeout is None else min(timeout, EXIT_POLL_INTERVAL)
        output = False
        for key, _events in self._selector.select(timeout):
            if key.data is _EXIT:
                self._selector.unregister(key.fd)
                self._mark_exited()
            elif isinstance(key.data, _Wakeup):
                key.data.on_ready()
            else:
                output = self._read(key.data) or output
        if self._exited_at is None and self._pidfd is None and self._has_exited_nowait():
            self._mark_exited()
        return output

    def _mark_exited(self) -> None:
        if self._exited_at is None:
            self._exited_at = time.monotonic()

    def _has_exited_nowait(self) -> bool:
        """Whether the child has exited, leaving it a zombie (WNOWAIT) until `reap()`."""
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the child's process group (the child and what it started)."""
        if self.pid <= 0 or self._rc is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:  # a member changed its uid (setuid helper)
            log.warning("cannot send %s to process group %d: %s", sig.name, self.pid, exc)

    def reap(self) -> int:
        """The child's rc; blocks until it has exited. Call once the child has exited."""
        if self._rc is None:
            self._rc = self._reap()
            self._mark_exited()
        return self._rc

    def _running(self) -> bool:
        """Whether a child was started and has not been reaped."""
        return self.pid > 0 and self._rc is None

    def close(self) -> None:
        """Release everything; a child still running is killed with its group first."""
        try:
            if self._running():
                self.signal_group(signal.SIGKILL)
                self.reap()
        finally:
            try:
                self._close_io()
            finally:
                self._selector.close()
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
