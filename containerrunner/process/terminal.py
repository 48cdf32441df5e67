"""The terminal backend: a caller's terminal passed through to the child on a pty of its own.

When the caller gives a terminal as stdin (`ansible-navigator exec`, `containerrunner exec`
from a shell), the child (a local command, or the engine client of `<engine> run -i -t`)
runs on a new pty that is a copy of that terminal: the same termios settings and size, so
`docker run -t`, which sizes the container's terminal from its own stdout, gets the caller's
size and not the 0x0 of a pipe. While the child runs:

- the caller's terminal is in raw mode and what is typed on it is copied, byte for byte, to
  the pty by a thread (Ctrl-C is a byte the child's pty turns into SIGINT, as with
  `docker run -it`); its settings are restored when the job ends, on every path;
- a size change (SIGWINCH) is copied to the pty, whose foreground process (the engine client)
  then resizes the container's terminal. Only the main thread can install a signal handler:
  a job run in another thread gets the size the terminal had at the start.

Output is read from the pty as in pexpect mode: stdout and stderr are one stream, given to the
`stdout` sink (no prompt is answered: the caller is there to type).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import termios
import threading
import tty
from types import FrameType
from typing import IO, Any

from containerrunner.isolation.types import Invocation
from containerrunner.process.base import READ_SIZE, Stream, write_all
from containerrunner.process.controls import ProcessControls
from containerrunner.process.pty import PtyBackend

log = logging.getLogger(__name__)

# How long close() waits for the input forwarder after telling it to stop; it never blocks
# anywhere but in select() with the stop pipe, so this is a safety net.
FORWARDER_JOIN_TIMEOUT = 5.0

TermAttrs = list[Any]  # what termios.tcgetattr returns


def terminal_fd(stdin: int | IO[Any] | None) -> int | None:
    """The file descriptor of `stdin` when it is a terminal, else None."""
    if stdin is None or isinstance(stdin, bool):
        return None
    try:
        fd = stdin if isinstance(stdin, int) else stdin.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return fd if os.isatty(fd) else None


def terminal_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of the terminal `fd`."""
    size = os.get_terminal_size(fd)
    return size.lines, size.columns


def _copy_attrs(attrs: TermAttrs) -> None:
    """In the child before exec: give its pty the caller's terminal settings."""
    termios.tcsetattr(0, termios.TCSANOW, attrs)


class TerminalBackend(PtyBackend):
    """The child on a pty copied from the caller's terminal `terminal` (see the module doc)."""

    def __init__(self, inv: Invocation, controls: ProcessControls, terminal: int) -> None:
        super().__init__(inv, controls)
        self.terminal = terminal
        self._saved_attrs: TermAttrs | None = None
        self._previous_winch: Any = None
        self._winch_installed = False
        self._forwarder: threading.Thread | None = None
        self._stop_forwarder_w: int | None = None

    def start(self) -> None:
        self._prompts = []
        attrs = termios.tcgetattr(self.terminal)
        self._spawn(
            echo=True,
            preexec_fn=lambda: _copy_attrs(attrs),
            dimensions=terminal_size(self.terminal),
        )
        assert self._child is not None
        pty_fd: int = self._child.child_fd
        # Writes by the forwarder must never block (a child that reads nothing while much is
        # pasted); _read copes with the rare wake-up with nothing to read.
        os.set_blocking(pty_fd, False)
        self._install_winch_handler()
        tty.setraw(self.terminal, termios.TCSANOW)
        self._saved_attrs = attrs
        stop_r, self._stop_forwarder_w = os.pipe()
        self._forwarder = threading.Thread(
            target=self._forward,
            args=(pty_fd, stop_r),
            name=f"containerrunner-terminal-{self.pid}",
            daemon=True,
        )
        self._forwarder.start()

    # -- size -----------------------------------------------------------------------------

    def _install_winch_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not in the main thread: the pty keeps the terminal's size at start")
            return
        try:
            self._previous_winch = signal.signal(signal.SIGWINCH, self._on_winch)
        except ValueError as exc:  # not the main interpreter
            log.debug("cannot follow the terminal's size: %s", exc)
            return
        self._winch_installed = True

    def _on_winch(self, signum: int, frame: FrameType | None) -> None:
        self.copy_size()
        previous = self._previous_winch
        if callable(previous):
            previous(signum, frame)

    def copy_size(self) -> None:
        """Give the pty the caller's terminal's current size (the child gets SIGWINCH)."""
        child = self._child
        if child is None or self._rc is not None:
            return
        try:
            child.setwinsize(*terminal_size(self.terminal))
        except OSError as exc:  # the terminal or the pty is gone
            log.debug("could not copy the terminal size: %s", exc)

    # -- input ----------------------------------------------------------------------------

    def _forward(self, pty_fd: int, stop_r: int) -> None:
        """Copy what is typed on the caller's terminal to the pty until told to stop."""
        try:
            while not self.stopping:
                ready, _, _ = select.select([self.terminal, stop_r], [], [])
                if stop_r in ready:
                    return
                try:
                    data = os.read(self.terminal, READ_SIZE)
                except BlockingIOError:  # a non-blocking terminal fd woke us for nothing
                    continue
                if not data or self.stopping:  # the terminal hung up
                    return
                if not write_all(pty_fd, data, stop_r):
                    return
        except OSError as exc:  # EIO: the terminal hung up; the child's pty closed
            log.debug("stopped copying the terminal's input: %s", exc)
        except Exception:
            log.exception("copying the terminal's input to the child failed")
        finally:
            os.close(stop_r)

    def _stop_forwarder(self) -> None:
        if self._forwarder is not None:
            assert self._stop_forwarder_w is not None
            with contextlib.suppress(BrokenPipeError):  # the forwarder ended and closed its end
                os.write(self._stop_forwarder_w, b"x")
            self._forwarder.join(FORWARDER_JOIN_TIMEOUT)
            if self._forwarder.is_alive():
                log.warning("the terminal input forwarder of pid %d did not stop", self.pid)
            self._forwarder = None
        if self._stop_forwarder_w is not None:
            os.close(self._stop_forwarder_w)
            self._stop_forwarder_w = None

    # -- backend --------------------------------------------------------------------------

    def _read(self, stream: Stream) -> bool:
        try:
            return super()._read(stream)
        except BlockingIOError:
            return False

    def _close_io(self) -> None:
        try:
            self._stop_forwarder()
        finally:
            try:
                if self._winch_installed:
                    previous = self._previous_winch
                    # None: a handler not installed from Python, which cannot be put back.
                    signal.signal(signal.SIGWINCH, signal.SIG_DFL if previous is None else previous)
                    self._winch_installed = False
                if self._saved_attrs is not None:
                    try:
                        termios.tcsetattr(self.terminal, termios.TCSANOW, self._saved_attrs)
                    except termios.error as exc:
                        if exc.args[0] not in (errno.EIO, errno.EBADF, errno.ENOTTY):
                            raise
                    self._saved_attrs = None
            finally:
                super()._close_io()
