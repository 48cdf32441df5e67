"""Turning SIGINT/SIGTERM into a job cancel while the Runner runs in the main thread."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class CancelOnSignal:
    """A cancel flag set by SIGTERM, and by SIGINT (Ctrl-C).

    The Runner polls `is_set` as its cancel_callback and then stops the job (and removes its
    container). With `interrupt_after=2`, the first Ctrl-C asks for a cancel and a second
    one raises KeyboardInterrupt; `sigint_cancels=False` leaves the first Ctrl-C to the child
    (`on_first_interrupt` passes it on) and only a second one cancels.
    """

    def __init__(
        self,
        *,
        sigint_cancels: bool = True,
        announce: bool = True,
        on_first_interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.event = threading.Event()
        self.sigint_cancels = sigint_cancels
        self.on_first_interrupt = on_first_interrupt
        self.announce = announce
        self.interrupts = 0
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.event.is_set()

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()

    def _on_int(self, signum: int, frame: FrameType | None) -> None:
        self.interrupts += 1
        self.signum = signum
        threshold = 1 if self.sigint_cancels else 2
        if self.interrupts > threshold:
            raise KeyboardInterrupt
        if self.interrupts == 1 and self.on_first_interrupt is not None:
            self.on_first_interrupt()
        if self.interrupts == threshold:
            if self.announce:
                sys.stderr.write("\ncontainerrunner: canceling the job (Ctrl-C again to abort)\n")
                sys.stderr.flush()
            self.event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[CancelOnSignal]:
        """Install the handlers (main thread only) and restore the previous ones after."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous: dict[signal.Signals, Any] = {}
        for signum, handler in ((signal.SIGTERM, self._on_term), (signal.SIGINT, self._on_int)):
            previous[signum] = signal.signal(signum, handler)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
