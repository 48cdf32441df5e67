"""The pexpect backend: the child on a pty, stdout and stderr merged, prompts answered.

Prompts are found with a rolling window of the recent output (what came since the last answer,
at most PROMPT_WINDOW characters): every regex of `passwords` is searched in it after each
read, so a prompt split over several reads, or after a lot of output, is still answered. An
answer is written to the pty only; it is never logged nor given to a sink, and the pty does not
echo it (the child is started with echo off).

Output is read from the pty directly (not with pexpect's expect/read, which would reap the
child when it sees EOF); pexpect starts the child and writes the answers.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING

from containerrunner.process.base import READ_SIZE, Backend, Stream
from containerrunner.process.controls import compile_prompts

if TYPE_CHECKING:
    import pexpect

log = logging.getLogger(__name__)

# Characters of recent output kept for prompt matching; far longer than any prompt.
PROMPT_WINDOW = 4096
# The pty's size (rows, columns) when there is no caller's terminal to copy it from.
DEFAULT_DIMENSIONS = (24, 80)


def _plain_newlines() -> None:
    """In the child before exec: no `\\n` -> `\\r\\n` on output, so text matches pipe mode."""
    attrs = termios.tcgetattr(0)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(0, termios.TCSANOW, attrs)


class PtyBackend(Backend):
    """`pexpect.spawn` (a new session with the pty as controlling terminal)."""

    _child: pexpect.spawn | None = None
    _window = ""
    _prompts: list[tuple[re.Pattern[str], str]]

    def start(self) -> None:
        self._prompts = compile_prompts(self.controls.passwords)
        self._spawn(echo=False, preexec_fn=_plain_newlines, dimensions=DEFAULT_DIMENSIONS)

    def _spawn(
        self, *, echo: bool, preexec_fn: Callable[[], None], dimensions: tuple[int, int]
    ) -> None:
        """Start the child on a new pty (rows, columns: `dimensions`) and watch its output.

        `preexec_fn` runs in the child before exec, with the pty as its fds 0, 1 and 2.
        """
        import pexpect  # deferred: only a pty job pays its import

        argv = self.inv.argv
        try:
            child = pexpect.spawn(
                argv[0],
                list(argv[1:]),
                cwd=self.inv.cwd,
                env=dict(self.inv.env),
                echo=echo,
                encoding="utf-8",
                codec_errors="replace",
                timeout=None,
                preexec_fn=preexec_fn,
                dimensions=dimensions,
            )
        except pexpect.ExceptionPexpect as exc:  # "The command was not found or not executable"
            raise FileNotFoundError(
                errno.ENOENT, f"cannot start {argv[0]!r}: {exc}", argv[0]
            ) from exc
        # close() must not sleep: the child is reaped before it is called.
        child.delayafterclose = 0
        child.ptyproc.delayafterclose = 0
        self._child = child
        self.pid = child.pid
        self._watch([Stream.of(child.child_fd, self.controls.stdout)])

    def _read(self, stream: Stream) -> bool:
        try:
            data = os.read(stream.fd, READ_SIZE)
        except OSError as exc:  # Linux: EIO once every holder of the pty's other end closed it
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._end_of(stream)
            return False
        text = stream.decoder.decode(data)
        self._emit(stream, text)
        if self._prompts and not self.stopping:
            self._answer(text)
        return True

    def _answer(self, text: str) -> None:
        """Answer every prompt that is now in the window, earliest first."""
        assert self._child is not None
        self._window = (self._window + text)[-PROMPT_WINDOW:]
        while True:
            found: tuple[re.Match[str], str] | None = None
            for regex, answer in self._prompts:
                match = regex.search(self._window)
                if match is None or match.end() == match.start():
                    continue
                if found is None or match.start() < found[0].start():
                    found = (match, answer)
            if found is None:
                return
            match, answer = found
            self._window = self._window[match.end() :]
            try:
                self._child.sendline(answer)
            except OSError as exc:  # the child is gone; its exit is handled by the lifecycle
                log.debug("could not answer the prompt matching %r: %s", match.re.pattern, exc)
                return

    def _reap(self) -> int:
        assert self._child is not None
        self._child.wait()
        signalstatus: int | None = self._child.signalstatus
        if signalstatus:
            return -signalstatus
        exitstatus: int | None = self._child.exitstatus
        return exitstatus if exitstatus is not None else -1

    def _close_io(self) -> None:
        if self._child is not None:
            self._child.close(force=True)
