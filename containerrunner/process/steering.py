"""Decisions for a running process, taken in other threads: stop it (with a grace), or keep
waiting after a timeout was reported instead of enforced.

The lifecycle blocks in its selector on the steering's wake-up pipe (no polling): a request
writes one byte there and the lifecycle takes the requests at once. Requests made before the
process started (or between two processes) wait until the next lifecycle attaches.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from containerrunner.process.controls import Outcome


@dataclass(frozen=True)
class StopRequest:
    """Stop the process: `outcome` and `reason` say why; `grace` overrides the job's
    termination grace (0: kill at once)."""

    outcome: Outcome
    reason: str
    grace: float | None = None


class Steering:
    """Thread-safe requests to one job's lifecycle; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop: StopRequest | None = None
        self._keep_waiting: list[float | None] = []
        self._wake_w: int | None = None

    def stop(self, request: StopRequest) -> None:
        """Ask for a stop; the first request wins, a later one can only shorten the grace."""
        with self._lock:
            current = self._stop
            if current is None:
                self._stop = request
            elif request.grace is not None and (
                current.grace is None or request.grace < current.grace
            ):
                self._stop = StopRequest(current.outcome, current.reason, request.grace)
            self._wake()

    def keep_waiting(self, seconds: float | None) -> None:
        """After a reported timeout: wait `seconds` more (None: one more period of it)."""
        with self._lock:
            self._keep_waiting.append(seconds)
            self._wake()

    @property
    def stop_request(self) -> StopRequest | None:
        with self._lock:
            return self._stop

    def take_keep_waiting(self) -> list[float | None]:
        with self._lock:
            taken, self._keep_waiting = self._keep_waiting, []
            return taken

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(self._wake_w, b"x")

    @contextlib.contextmanager
    def attached(self) -> Iterator[int]:
        """A wake-up fd that becomes readable on every request (one already made included),
        for one lifecycle; drain it with `drain(fd)`."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        with self._lock:
            self._wake_w = write_fd
            if self._stop is not None or self._keep_waiting:
                self._wake()
        try:
            yield read_fd
        finally:
            with self._lock:
                self._wake_w = None
            os.close(write_fd)
            os.close(read_fd)


def drain(fd: int) -> None:
    """Read every wake-up byte waiting on `fd`."""
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass
