"""transmit / worker / process without running a job: the archive's safety, the idle timeout,
what transmit sends, how process files what a worker writes, and the clear errors for streams
that are truncated, corrupt or silent.

Processes: none (the idle-timeout test reads an os.pipe nobody writes to).
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from containerrunner import streaming
from containerrunner.errors import ConfigurationError, StreamError
from containerrunner.streaming import archive, wire
from containerrunner.streaming.idle import IdleReader
from containerrunner.streaming.worker import read_job


def _zip(entries: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, (data, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            out.writestr(info, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------- archive
def test_a_directory_round_trips_with_modes_and_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "project").mkdir(parents=True)
    (src / "project" / "site.yml").write_text("- hosts: all\n")
    script = src / "inventory"
    script.write_text("#!/bin/sh\necho {}\n")
    script.chmod(0o755)
    (src / "hosts").symlink_to("inventory")
    os.mkfifo(src / "ssh_key_fifo")
    (src / "artifacts").mkdir()
    (src / "artifacts" / "old").write_text("earlier run")

    dest = tmp_path / "dest"
    archive.unzip_into(archive.zip_dir(src, skip=("artifacts",)), dest)

    assert (dest / "project" / "site.yml").read_text() == "- hosts: all\n"
    assert stat.S_IMODE((dest / "inventory").stat().st_mode) == 0o755
    assert os.readlink(dest / "hosts") == "inventory"
    assert not (dest / "ssh_key_fifo").exists()
    assert not (dest / "artifacts").exists()


@pytest.mark.parametrize(
    "name", ["../escape", "/etc/evil", "a/../../escape", "ok/../../../x"], ids=str
)
def test_a_member_outside_the_target_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StreamError, match="points outside"):
        archive.unzip_into(_zip({name: (b"x", 0o100644)}), tmp_path / "dest")
    assert not (tmp_path / "escape").exists()


def test_a_symlink_out_and_a_write_through_a_link_are_refused(tmp_path: Path) -> None:
    link_out = _zip({"up": (b"../../outside", stat.S_IFLNK | 0o777)})
    with pytest.raises(StreamError, match="symlink 'up'"):
        archive.unzip_into(link_out, tmp_path / "a")
    through = _zip({"d": (b"sub", stat.S_IFLNK | 0o777), "d/f": (b"x", 0o100644)})
    with pytest.raises(StreamError, match="through a symlink"):
        archive.unzip_into(through, tmp_path / "b")


def test_setid_bits_are_dropped_and_size_is_bounded(tmp_path: Path) -> None:
    archive.unzip_into(_zip({"tool": (b"x", 0o104755)}), tmp_path / "a")
    assert stat.S_IMODE((tmp_path / "a" / "tool").stat().st_mode) == 0o755
    with pytest.raises(StreamError, match="more than the bound of 10"):
        archive.unzip_into(_zip({"big": (b"x" * 11, 0o100644)}), tmp_path / "b", 10)
    with pytest.raises(StreamError, match="not a zip file"):
        archive.unzip_into(b"not a zip", tmp_path / "c")


# ---------------------------------------------------------------------- idle reader
def test_a_silent_sender_ends_in_a_stream_error() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b'{"status": "running"}\npartial')
        reader = IdleReader(read_end, 0.2)
        assert reader.readline() == b'{"status": "running"}\n'
        with pytest.raises(StreamError, match=r"silent for 0.2 s"):
            reader.readline()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_worker_whose_sender_goes_silent_refuses_the_job_within_the_idle_timeout() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"kwargs": {"playbook": "site.yml"}}\n')  # then nothing, pipe open
    back = io.BytesIO()
    try:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            result = streaming.worker(source, back, idle_timeout=0.3)
    finally:
        os.close(write_end)
    assert result.status == "error" and result.rc is None
    assert "silent for 0.3 s" in (result.job_explanation or "")
    items = list(wire.read_items(io.BytesIO(back.getvalue())))
    assert [i.kind for i in items] == ["status", "eof"]
    assert items[0].data["status"] == "error"


def test_the_idle_reader_reads_lines_and_payloads_like_a_file() -> None:
    read_end, write_end = os.pipe()
    out = io.BytesIO()
    wire.write_kwargs(out, {"playbook": "x.yml"})
    wire.write_zip(out, b"PK-bytes")
    wire.write_eof(out)
    os.write(write_end, out.getvalue())
    os.close(write_end)
    try:
        items = list(wire.read_items(IdleReader(read_end, 5)))
    finally:
        os.close(read_end)
    assert [i.kind for i in items] == ["kwargs", "zipfile", "eof"]
    assert items[1].payload == b"PK-bytes"


# ---------------------------------------------------------------------- transmit
def _pdd(tmp_path: Path) -> Path:
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "project" / "site.yml").write_text("- hosts: all\n")
    (pdd / "artifacts" / "old").mkdir(parents=True)
    return pdd


def test_transmit_sends_the_job_not_the_callers_side(tmp_path: Path) -> None:
    out = io.BytesIO()
    ident = streaming.transmit(
        out,
        private_data_dir=str(_pdd(tmp_path)),
        artifact_dir="/caller/only",
        playbook="site.yml",
        limit=None,
        event_handler=print,
    )
    out.seek(0)
    kwargs, payload = read_job(out)
    assert kwargs == {"playbook": "site.yml", "ident": ident}
    assert payload is not None
    assert zipfile.ZipFile(io.BytesIO(payload)).namelist() == ["project/", "project/site.yml"]


def test_transmit_refuses_bad_requests_before_writing(tmp_path: Path) -> None:
    out, pdd = io.BytesIO(), str(_pdd(tmp_path))
    with pytest.raises(ConfigurationError, match="'playbok'"):
        streaming.transmit(out, private_data_dir=pdd, playbok="site.yml")
    with pytest.raises(ConfigurationError, match="'extravars' cannot travel"):
        streaming.transmit(out, private_data_dir=pdd, extravars={"x": object()})
    with pytest.raises(ConfigurationError, match="private_data_dir must be an existing"):
        streaming.transmit(out, private_data_dir=str(tmp_path / "nope"), playbook="x.yml")
    assert out.getvalue() == b""


# ---------------------------------------------------------------------- worker, bad input
@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (b'{"kwargs": {"playbook": "x.yml"}}\n', "without its eof line"),
        (b"not json\n", "not JSON"),
        (b'{"eof": true}\n', "no kwargs line"),
        (b'{"status": "running"}\n{"eof": true}\n', "holds a status line"),
        (b'{"kwargs": {}}\n{"zipfile": 10}\nQUJD', "ends inside the zip payload"),
    ],
    ids=["truncated", "garbage", "no-kwargs", "worker-output", "short-zip"],
)
def test_the_worker_answers_a_bad_stream_with_one_error_line(stream: bytes, why: str) -> None:
    out = io.BytesIO()
    result = streaming.worker(io.BytesIO(stream), out)
    assert result.status == "error" and result.rc is None
    assert why in (result.job_explanation or "")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"status": "error", "job_explanation": result.job_explanation}, {"eof": True}]


def test_the_worker_refuses_a_zip_that_escapes(tmp_path: Path) -> None:
    stream = io.BytesIO()
    wire.write_kwargs(stream, {"playbook": "x.yml", "ident": "j1"})
    wire.write_zip(stream, _zip({"../../escape": (b"x", 0o100644)}))
    wire.write_eof(stream)
    stream.seek(0)
    out = io.BytesIO()
    result = streaming.worker(stream, out, private_data_dir=str(tmp_path / "w"))
    assert result.status == "error" and "points outside" in (result.job_explanation or "")
    assert json.loads(out.getvalue().splitlines()[0])["runner_ident"] == "j1"
    assert not (tmp_path / "escape").exists()


# ---------------------------------------------------------------------- process
def _result_stream(artifacts: dict[str, tuple[bytes, int]], eof: bool = True) -> io.BytesIO:
    out = io.BytesIO()
    wire.write_line(out, {"status": "starting", "runner_ident": "j1", "command": ["ansible"]})
    wire.write_line(out, {"event": "keepalive"})
    wire.write_line(out, {"uuid": "aa-1", "counter": 1, "event": "playbook_on_start"})
    wire.write_line(out, {"uuid": "../../x", "counter": 2, "event": "evil"})
    wire.write_line(out, {"counter": 3, "event": "no_uuid"})
    wire.write_line(
        out,
        {
            "uuid": "bb-2",
            "counter": 4,
            "event": "playbook_on_stats",
            "event_data": {"ok": {"h": 1}},
        },
    )
    wire.write_line(out, {"status": "successful", "runner_ident": "j1"})
    wire.write_zip(out, _zip(artifacts))
    if eof:
        wire.write_eof(out)
    out.seek(0)
    return out


def test_process_files_events_unpacks_artifacts_and_calls_handlers(tmp_path: Path) -> None:
    calls: list[Any] = []
    result = streaming.process(
        _result_stream({"rc": (b"0", 0o100600), "status": (b"successful", 0o100600)}),
        private_data_dir=str(tmp_path),
        ident="j1",
        quiet=True,
        status_handler=lambda data, config: calls.append(("status", data["status"], config)),
        event_handler=lambda event: calls.append(("event", event["event"])) or True,
        artifacts_handler=lambda path: calls.append(("artifacts", path)),
        finished_callback=lambda res: calls.append(("finished", res.status)),
    )
    where = str(tmp_path / "artifacts" / "j1")
    assert (result.status, result.rc, result.artifact_dir) == ("successful", 0, where)
    assert [c[:2] for c in calls] == [
        ("status", "starting"),
        ("event", "playbook_on_start"),
        ("event", "playbook_on_stats"),
        ("status", "successful"),
        ("artifacts", where),
        ("finished", "successful"),
    ]
    assert calls[0][2].command == ["ansible"] and calls[0][2].env is None
    names = sorted(p.name for p in Path(where, "job_events").iterdir())
    assert names == ["1-aa-1.json", "4-bb-2.json"]
    assert stat.S_IMODE(Path(where, "job_events", names[0]).stat().st_mode) == 0o600
    assert [e["counter"] for e in result.events] == [1, 4]
    assert result.stats is not None and result.stats["ok"] == {"h": 1}
    assert not (tmp_path / "x").exists()


def test_a_discarded_event_leaves_no_file_and_quiet_false_prints_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.BytesIO()
    wire.write_line(stream, {"uuid": "aa-1", "counter": 1, "event": "x", "stdout": "hello"})
    wire.write_eof(stream)
    stream.seek(0)
    result = streaming.process(stream, artifact_dir=str(tmp_path / "a"), event_handler=lambda e: 0)
    assert list(result.events) == []
    assert capsys.readouterr().out == "hello\n"


def test_a_truncated_result_stream_ends_in_error_not_a_hang(tmp_path: Path) -> None:
    statuses: list[dict[str, Any]] = []
    result = streaming.process(
        _result_stream({"rc": (b"0", 0o100600)}, eof=False),
        artifact_dir=str(tmp_path / "a"),
        quiet=True,
        status_handler=lambda data, config: statuses.append(data),
    )
    assert result.status == "error"
    assert "without its eof line" in (result.job_explanation or "")
    assert statuses[-1]["status"] == "error"
    assert [e["counter"] for e in result.events] == [1, 4]  # what arrived is kept


def test_a_corrupt_artifacts_zip_ends_in_error(tmp_path: Path) -> None:
    stream = io.BytesIO()
    wire.write_line(stream, {"status": "successful", "runner_ident": "j1"})
    wire.write_zip(stream, b"this is not a zip")
    wire.write_eof(stream)
    stream.seek(0)
    result = streaming.process(stream, artifact_dir=str(tmp_path / "a"), quiet=True)
    assert result.status == "error" and "not a zip file" in (result.job_explanation or "")


def test_process_refuses_a_transmit_stream_and_can_be_canceled(tmp_path: Path) -> None:
    out = io.BytesIO()
    streaming.transmit(out, private_data_dir=str(_pdd(tmp_path)), playbook="site.yml")
    out.seek(0)
    result = streaming.process(out, artifact_dir=str(tmp_path / "a"), quiet=True)
    assert result.status == "error" and "what `transmit` writes" in (result.job_explanation or "")

    result = streaming.process(
        _result_stream({}),
        artifact_dir=str(tmp_path / "b"),
        quiet=True,
        cancel_callback=lambda: True,
    )
    assert result.status == "canceled"
    assert list(result.events) == []
