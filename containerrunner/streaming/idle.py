"""A reader of a pipe or socket that gives up when the sender goes silent.

`IdleReader(fd, idle_timeout)` offers the `readline(limit)` and `read(n)` that
`wire.read_items` uses; when no byte arrives for `idle_timeout` seconds it raises `StreamError`
saying how long the stream was silent, so a reader of a stuck or vanished worker ends instead of
hanging.
"""

from __future__ import annotations

import os
import select
from typing import IO

from containerrunner.errors import StreamError
from containerrunner.streaming.wire import Readable

_CHUNK = 1024 * 1024


class IdleReader:
    """Buffered reads from the file descriptor `fd`, each waiting at most `idle_timeout` s."""

    def __init__(self, fd: int, idle_timeout: float) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        self._fd = fd
        self._idle_timeout = idle_timeout
        self._buffer = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        """Read what the sender has (waiting for it); False at the end of the stream."""
        if self._eof:
            return False
        ready, _, _ = select.select([self._fd], [], [], self._idle_timeout)
        if not ready:
            raise StreamError(
                f"job stream silent for {self._idle_timeout:g} s (idle timeout): the sender "
                "stopped writing without ending the stream"
            )
        chunk = os.read(self._fd, _CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def readline(self, limit: int = -1) -> bytes:
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                size = end + 1
                break
            if 0 <= limit <= len(self._buffer):
                size = limit
                break
            start = len(self._buffer)
            if not self._fill():
                size = len(self._buffer)
                break
        if 0 <= limit < size:
            size = limit
        line = bytes(self._buffer[:size])
        del self._buffer[:size]
        return line

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def reader_for(stream: IO[bytes], idle_timeout: float | None) -> Readable:
    """`stream` itself, or an IdleReader of its descriptor when an idle timeout is asked for
    (a stream without a descriptor, such as a BytesIO, has nothing to wait on)."""
    if idle_timeout is None:
        return stream
    try:
        return IdleReader(stream.fileno(), idle_timeout)
    except (OSError, ValueError, AttributeError):
        return stream
