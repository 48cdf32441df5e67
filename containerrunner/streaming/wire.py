"""The job stream's wire format, the one ansible-runner 2.4.3 speaks.

The stream is newline-delimited JSON. Control lines are ``{"kwargs": {...}}`` (the job's
keyword arguments), ``{"status": ...}`` (a status change), ``{"zipfile": N}`` (followed at once
by the base64 text of an N-byte zip, with no newline of its own: the private data dir one way,
the artifacts the other) and ``{"eof": true}`` (the end). Any other JSON object is an event.
A stream that ends before its eof line, a line that is not a JSON object, a zip payload that is
short or not base64, or one larger than the bound, raises `StreamError` naming the line.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol

from containerrunner.errors import StreamError

#: Largest zip payload (zip bytes) a reader accepts unless told otherwise.
DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024
#: Longest JSON line a reader accepts (events carry stdout, so this is generous).
MAX_LINE = 64 * 1024 * 1024

Kind = Literal["kwargs", "status", "event", "zipfile", "eof"]


class Readable(Protocol):
    """What the reader needs of its input: a binary file, or an `idle.IdleReader`."""

    def readline(self, limit: int = -1, /) -> bytes: ...

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class Item:
    """One item of the stream: its kind, the JSON object and, for a zipfile, the zip bytes."""

    kind: Kind
    data: dict[str, Any]
    payload: bytes = b""


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def write_kwargs(out: IO[bytes], kwargs: dict[str, Any]) -> None:
    out.write(_line({"kwargs": kwargs}))


def write_line(out: IO[bytes], data: dict[str, Any]) -> None:
    """A status line or an event, as it is: one JSON object per line."""
    out.write(_line(data))


def write_zip(out: IO[bytes], zip_bytes: bytes) -> None:
    out.write(_line({"zipfile": len(zip_bytes)}))
    out.write(base64.b64encode(zip_bytes))


def write_eof(out: IO[bytes]) -> None:
    out.write(_line({"eof": True}))
    out.flush()


def _kind(data: dict[str, Any]) -> Kind:
    if "kwargs" in data:
        return "kwargs"
    if "zipfile" in data:
        return "zipfile"
    if data.get("eof") is True:
        return "eof"
    if "status" in data and "event" not in data:
        return "status"
    return "event"


def _read_payload(stream: Readable, size: int, lineno: int) -> bytes:
    """Read the base64 text of a `size`-byte zip (4 characters per 3 bytes, padded)."""
    encoded_size = 4 * ((size + 2) // 3)
    chunks: list[bytes] = []
    remaining = encoded_size
    while remaining:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            raise StreamError(
                f"job stream ends inside the zip payload announced on line {lineno}: "
                f"got {encoded_size - remaining} of {encoded_size} bytes "
                "(the sender stopped or was killed)"
            )
        chunks.append(chunk)
        remaining -= len(chunk)
    try:
        payload = base64.b64decode(b"".join(chunks), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StreamError(f"zip payload announced on line {lineno} is not base64: {exc}") from None
    if len(payload) != size:
        raise StreamError(
            f"zip payload announced on line {lineno} decodes to {len(payload)} bytes, not {size}"
        )
    return payload


def read_items(stream: Readable, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Iterator[Item]:
    """Yield the stream's items up to and including its eof line; raise `StreamError` if the
    stream ends early or holds something that is not the wire format."""
    lineno = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        lineno += 1
        if not raw:
            raise StreamError(
                f"job stream ended after {lineno - 1} lines without its eof line "
                "(truncated: the sender stopped or was killed)"
            )
        if len(raw) > MAX_LINE:
            raise StreamError(f"job stream line {lineno} is longer than {MAX_LINE} bytes")
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StreamError(
                f"job stream line {lineno} is not JSON ({exc}): {raw[:80]!r}"
            ) from None
        if not isinstance(data, dict):
            raise StreamError(f"job stream line {lineno} is not a JSON object: {raw[:80]!r}")
        kind = _kind(data)
        if kind == "zipfile":
            size = data["zipfile"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise StreamError(f"job stream line {lineno}: zipfile size {size!r} is invalid")
            if size > max_payload:
                raise StreamError(
                    f"job stream line {lineno}: zip payload of {size} bytes is larger than "
                    f"the bound of {max_payload} bytes"
                )
            yield Item(kind, data, _read_payload(stream, size, lineno))
            continue
        yield Item(kind, data)
        if kind == "eof":
            return
