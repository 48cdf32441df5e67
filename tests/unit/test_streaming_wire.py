"""The job stream's wire format: round trip, and the clear errors for truncated or corrupt input.

Processes: none; streams are in-memory byte buffers.
"""

from __future__ import annotations

import io
import json

import pytest

from containerrunner.errors import StreamError
from containerrunner.streaming import wire


def _stream() -> io.BytesIO:
    out = io.BytesIO()
    wire.write_kwargs(out, {"playbook": "demo.yml"})
    wire.write_line(out, {"status": "starting", "runner_ident": "1"})
    wire.write_line(out, {"uuid": "u1", "event": "playbook_on_start", "counter": 1})
    wire.write_zip(out, b"PK\x03\x04zip-bytes")
    wire.write_line(out, {"status": "successful", "runner_ident": "1"})
    wire.write_eof(out)
    return out


def test_round_trip_yields_every_item_in_order() -> None:
    items = list(wire.read_items(io.BytesIO(_stream().getvalue())))
    assert [i.kind for i in items] == ["kwargs", "status", "event", "zipfile", "status", "eof"]
    assert items[0].data == {"kwargs": {"playbook": "demo.yml"}}
    assert items[2].data["event"] == "playbook_on_start"
    assert items[3].payload == b"PK\x03\x04zip-bytes"


def test_zip_payload_is_base64_sized_like_ansible_runner() -> None:
    out = io.BytesIO()
    wire.write_zip(out, b"abc")
    header, _, rest = out.getvalue().partition(b"\n")
    assert json.loads(header) == {"zipfile": 3}
    assert rest == b"YWJj"


def test_payload_is_followed_directly_by_the_next_line() -> None:
    # ansible-runner writes the eof line right after the base64 text, with no newline between.
    data = b'{"zipfile": 4}\nYWJjZA=={"eof": true}\n'
    items = list(wire.read_items(io.BytesIO(data)))
    assert [i.kind for i in items] == ["zipfile", "eof"]
    assert items[0].payload == b"abcd"


def test_stream_without_eof_is_truncated() -> None:
    data = _stream().getvalue().rsplit(b'{"eof"', 1)[0]
    with pytest.raises(StreamError, match="without its eof line"):
        list(wire.read_items(io.BytesIO(data)))


def test_stream_cut_inside_payload_names_the_line() -> None:
    out = io.BytesIO()
    wire.write_kwargs(out, {})
    wire.write_zip(out, b"x" * 300)
    data = out.getvalue()[:-10]  # inside the 400 base64 characters
    with pytest.raises(StreamError, match="inside the zip payload announced on line 2"):
        list(wire.read_items(io.BytesIO(data)))


def test_payload_that_is_not_base64_is_corrupt() -> None:
    data = b'{"zipfile": 3}\n!!!!{"eof": true}\n'
    with pytest.raises(StreamError, match="line 1 is not base64"):
        list(wire.read_items(io.BytesIO(data)))


def test_line_that_is_not_json_names_the_line() -> None:
    data = b'{"kwargs": {}}\nnot json\n'
    with pytest.raises(StreamError, match="line 2 is not JSON"):
        list(wire.read_items(io.BytesIO(data)))


def test_json_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(StreamError, match="line 1 is not a JSON object"):
        list(wire.read_items(io.BytesIO(b"[1, 2]\n")))


@pytest.mark.parametrize("size", ["4", -1, True])
def test_invalid_zipfile_size_is_rejected(size: object) -> None:
    data = json.dumps({"zipfile": size}).encode() + b"\n"
    with pytest.raises(StreamError, match="zipfile size"):
        list(wire.read_items(io.BytesIO(data)))


def test_payload_larger_than_the_bound_is_rejected_before_reading() -> None:
    out = io.BytesIO()
    wire.write_zip(out, b"x" * 100)
    with pytest.raises(StreamError, match="larger than the bound of 10 bytes"):
        list(wire.read_items(io.BytesIO(out.getvalue()), max_payload=10))


def test_reading_stops_at_eof_and_leaves_the_rest() -> None:
    buf = io.BytesIO(b'{"eof": true}\ntrailing')
    assert [i.kind for i in wire.read_items(buf)] == ["eof"]
    assert buf.read() == b"trailing"
