"""`containerrunner transmit | worker | process` as a user pipes them: the demo end to end, a
worker whose reader goes away cancels its job (container removed), and a worker killed mid-run
ends `process` with a clear error at once, not a hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest

from containerrunner import tempdirs
from containerrunner.isolation.reaper import reap_orphans
from tests.conftest import EE_IMAGE, our_containers
from tests.e2e.test_cli_daemon import LONG_PLAYBOOK, cli

CLI = [sys.executable, "-m", "containerrunner"]


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    from tests.integration.support import copy_examples

    target = copy_examples(tmp_path)
    (target / "project" / "long.yml").write_text(LONG_PLAYBOOK)
    return target


def test_the_pipeline_runs_the_demo(demo: Path, tmp_path: Path) -> None:
    caller = tmp_path / "caller"
    caller.mkdir()
    script = (
        f"{CLI[0]} -m containerrunner transmit {demo} -p site.yml -i piped"
        f" | {CLI[0]} -m containerrunner worker"
        f" | {CLI[0]} -m containerrunner process {caller} -i piped"
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=300, env=_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "PLAY RECAP" in done.stdout
    artifacts = caller / "artifacts" / "piped"
    assert (artifacts / "status").read_text() == "successful"
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").iterdir()]
    assert {e["event"] for e in events} >= {"playbook_on_start", "playbook_on_stats"}


def test_a_bad_request_and_a_bad_stream_are_one_line_errors(demo: Path, tmp_path: Path) -> None:
    bad = cli("transmit", str(demo), "--forks", "many", "-p", "site.yml", cwd=tmp_path)
    assert bad.returncode == 2 and "--forks" in bad.stderr and bad.stdout == ""
    garbage = subprocess.run(
        [*CLI, "process", str(tmp_path)], input="not a stream\n", capture_output=True,
        text=True, timeout=60, env=_env(), check=False,
    )  # fmt: skip
    assert garbage.returncode == 1
    assert garbage.stderr.count("\n") == 1 and "line 1 is not JSON" in garbage.stderr


def _start_pipeline(
    demo: Path, tmp_path: Path, engine: Any
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    stream = tmp_path / "job.stream"
    with stream.open("wb") as out:
        subprocess.run(
            [*CLI, "transmit", str(demo), "-p", "long.yml", "--engine", engine.name,
             "--container-image", EE_IMAGE],
            stdout=out, check=True, timeout=60, env=_env(),
        )  # fmt: skip
    with stream.open("rb") as job:
        worker = subprocess.Popen([*CLI, "worker"], stdin=job, stdout=subprocess.PIPE, env=_env())
    assert worker.stdout is not None
    processing = subprocess.Popen(
        [*CLI, "process", str(tmp_path / "caller"), "--idle-timeout", "120"],
        stdin=worker.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )  # fmt: skip
    worker.stdout.close()  # the pipe is process's now: its end is the worker's reader
    assert processing.stdout is not None
    _read_until(processing.stdout, b"Sleep a long time")
    return worker, processing


def _read_until(stdout: IO[bytes], needle: bytes) -> None:
    seen = b""
    for line in stdout:  # ends at EOF: a failed job is then reported below
        seen += line
        if needle in line:
            return
    pytest.fail(f"the stream ended before {needle!r}: {seen[-2000:]!r}")


def test_a_worker_whose_reader_goes_away_cancels_its_job(
    demo: Path, tmp_path: Path, engine: Any
) -> None:
    worker, processing = _start_pipeline(demo, tmp_path, engine)
    assert our_containers(engine, worker.pid), "the job's container is not running"
    processing.kill()
    processing.wait(timeout=30)
    assert worker.wait(timeout=120) == 0
    assert our_containers(engine, worker.pid) == []


def test_a_worker_killed_mid_run_ends_process_with_an_error(
    demo: Path, tmp_path: Path, engine: Any
) -> None:
    worker, processing = _start_pipeline(demo, tmp_path, engine)
    try:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        _, err = processing.communicate(timeout=60)
        assert processing.returncode == 1
        assert b"without its eof line" in err and err.count(b"\n") == 1, err
    finally:
        reap_orphans(engine)  # the dead worker's container and dirs: what the next job's
        tempdirs.reap_stale()  # reaper does
    assert our_containers(engine, worker.pid) == []
