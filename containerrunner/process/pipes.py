"""The subprocess backend: pipes for stdout and stderr (kept apart), stdin as the caller gave it."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import threading
from typing import IO, Any

from containerrunner.process.base import READ_SIZE, Backend, Stream, write_all

log = logging.getLogger(__name__)

# How long close() waits for the stdin feeder after telling it to stop; it only takes longer
# when the caller's file-like object blocks in read().
FEEDER_JOIN_TIMEOUT = 5.0


def _real_fd(stdin: IO[Any]) -> bool:
    try:
        stdin.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return True


class PipeBackend(Backend):
    """`subprocess.Popen` in a new session with stdout and stderr on pipes."""

    _proc: subprocess.Popen[bytes] | None = None
    _feeder: threading.Thread | None = None
    _stop_feeder_w: int | None = None

    def start(self) -> None:
        stdin = self.controls.stdin
        feed: IO[Any] | None = None
        stdin_arg: int | IO[Any]
        if stdin is None:
            stdin_arg = subprocess.DEVNULL
        elif isinstance(stdin, int) or _real_fd(stdin):
            stdin_arg = stdin
        else:
            stdin_arg, feed = subprocess.PIPE, stdin
        self._proc = proc = subprocess.Popen(
            list(self.inv.argv),
            cwd=self.inv.cwd,
            env=dict(self.inv.env),
            stdin=stdin_arg,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            bufsize=0,
        )
        self.pid = proc.pid
        assert proc.stdout is not None and proc.stderr is not None
        self._watch(
            [
                Stream.of(proc.stdout.fileno(), self.controls.stdout),
                Stream.of(proc.stderr.fileno(), self.controls.stderr),
            ]
        )
        if feed is not None:
            assert proc.stdin is not None
            stop_r, self._stop_feeder_w = os.pipe()
            self._feeder = threading.Thread(
                target=_feed,
                args=(feed, proc.stdin, stop_r),
                name=f"containerrunner-stdin-{self.pid}",
                daemon=True,
            )
            self._feeder.start()

    def _reap(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def _close_io(self) -> None:
        feeder_done = True
        if self._feeder is not None:
            assert self._stop_feeder_w is not None
            with contextlib.suppress(BrokenPipeError):  # the feeder ended and closed its end
                os.write(self._stop_feeder_w, b"x")
            self._feeder.join(FEEDER_JOIN_TIMEOUT)
            feeder_done = not self._feeder.is_alive()
            if not feeder_done:
                log.warning("the stdin feeder of pid %d is still blocked in read()", self.pid)
            os.close(self._stop_feeder_w)
            self._stop_feeder_w = None
        proc = self._proc
        if proc is None:
            return
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        # A feeder still running owns the stdin pipe and closes it when it ends.
        if proc.stdin is not None and feeder_done:
            proc.stdin.close()


def _feed(source: IO[Any], sink: IO[bytes], stop_r: int) -> None:
    """Copy `source` (str or bytes chunks) into the child's stdin, then close it.

    The pipe is non-blocking and every write waits with select() for either room in the pipe
    or a byte on `stop_r`, so close() can always stop this thread while it waits on the child.
    """
    fd = sink.fileno()
    try:
        os.set_blocking(fd, False)
        while True:
            chunk = source.read(READ_SIZE)
            if not chunk:
                return
            data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
            if not write_all(fd, data, stop_r):
                return
    except BrokenPipeError:  # the child closed its stdin or exited: nothing more to give
        pass
    except Exception:
        log.exception("reading the stdin given to the child failed")
    finally:
        os.close(stop_r)
        with contextlib.suppress(OSError):
            sink.close()
