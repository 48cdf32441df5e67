"""transmit -> worker -> process for real: the demo on the host, in podman and in docker, the
same events and stats as a local run; ansible-runner 2.4.3 on either side; secrets given to
transmit nowhere in the returned stream or on the caller's side.

Real parts: Ansible running the demo (locally or in the project's EE image with podman and
docker), ansible-runner's own `worker` and `process` commands from this venv.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import containerrunner
from containerrunner import streaming
from containerrunner.streaming import wire
from tests.integration.support import (
    ansible_on_path,
    assert_secret_nowhere,
    copy_examples,
    event_shape,
    make_ssh_key,
)

__all__ = ["ansible_on_path"]

RUNNER = str(Path(sys.executable).with_name("ansible-runner"))
MARKER = "cr-stream-secret-5d1e"


def _ansible_runner(argv: list[str], stdin: bytes) -> bytes:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [RUNNER, *argv], input=stdin, capture_output=True, check=True, timeout=300, env=env
    )
    return done.stdout


def _local(demo: Path, where: dict[str, Any]) -> containerrunner.Runner:
    return containerrunner.run(
        private_data_dir=str(demo), playbook="site.yml", quiet=True, ident="local", **where
    )


def test_a_streamed_job_gives_what_a_local_run_gives(where: dict[str, Any], tmp_path: Path) -> None:
    demo = copy_examples(tmp_path)
    local = _local(demo, where)

    sent = io.BytesIO()
    ident = streaming.transmit(
        sent,
        private_data_dir=str(demo),
        playbook="site.yml",
        envvars={"STREAM_TOKEN": MARKER},
        passwords={"^never prompted: $": MARKER},
        ssh_key=make_ssh_key(tmp_path),
        **where,
    )
    back = io.BytesIO()
    worked = streaming.worker(io.BytesIO(sent.getvalue()), back)
    assert (worked.status, worked.rc) == ("successful", 0), worked.job_explanation

    assert MARKER.encode() not in back.getvalue()
    lines = [i.data for i in wire.read_items(io.BytesIO(back.getvalue())) if i.kind == "status"]
    assert lines[0]["status"] == "starting" and "env" not in lines[0]

    caller = tmp_path / "caller"
    statuses: list[str] = []
    done = streaming.process(
        io.BytesIO(back.getvalue()),
        private_data_dir=str(caller),
        ident=ident,
        quiet=True,
        status_handler=lambda data, config: statuses.append(data["status"]),
    )
    assert (done.status, done.rc) == ("successful", 0)
    assert statuses == ["starting", "running", "successful"]
    assert done.artifact_dir == str(caller / "artifacts" / ident)
    assert event_shape(done.events) == event_shape(local.events)
    assert done.stats == local.stats
    assert (caller / "artifacts" / ident / "stdout").read_text().count("PLAY RECAP") == 1
    assert_secret_nowhere(MARKER, caller)


def test_our_transmit_feeds_ansible_runners_worker(tmp_path: Path) -> None:
    demo = copy_examples(tmp_path)
    local = _local(demo, {"process_isolation": False})
    sent = io.BytesIO()
    ident = streaming.transmit(sent, private_data_dir=str(demo), playbook="site.yml")
    back = _ansible_runner(["worker"], sent.getvalue())
    done = streaming.process(
        io.BytesIO(back), private_data_dir=str(tmp_path / "caller"), ident=ident, quiet=True
    )
    assert done.status == "successful"
    assert event_shape(done.events) == event_shape(local.events)
    assert done.stats == local.stats


def test_ansible_runners_transmit_feeds_our_worker_and_its_process(tmp_path: Path) -> None:
    demo = copy_examples(tmp_path)
    local = _local(demo, {"process_isolation": False})
    sent = _ansible_runner(["transmit", str(demo), "-p", "site.yml"], b"")
    back = io.BytesIO()
    worked = streaming.worker(io.BytesIO(sent), back)
    assert worked.status == "successful", worked.job_explanation

    caller = tmp_path / "caller"
    caller.mkdir()
    _ansible_runner(["process", str(caller)], back.getvalue())
    artifacts = caller / "artifacts"
    assert (artifacts / "status").read_text() == "successful"
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").iterdir()]
    events.sort(key=lambda e: e["counter"])
    assert event_shape(events) == event_shape(local.events)


def test_run_with_a_streamer_is_ansible_runners_three_phases(tmp_path: Path) -> None:
    """AWX's way: the same run() keyword arguments with streamer= for each phase."""
    demo = copy_examples(tmp_path)
    local = _local(demo, {"process_isolation": False})
    job = {"private_data_dir": str(demo), "playbook": "site.yml", "ident": "streamed"}
    sent = io.BytesIO()
    transmitted = containerrunner.run(streamer="transmit", _output=sent, **job)
    assert (transmitted.status, transmitted.rc) == ("unstarted", None)

    back = io.BytesIO()
    worked = containerrunner.run(
        streamer="worker", _input=io.BytesIO(sent.getvalue()), _output=back
    )
    assert (worked.status, worked.rc) == ("successful", 0), worked.job_explanation

    seen: list[dict[str, Any]] = []
    caller = tmp_path / "caller"
    done = containerrunner.run(
        streamer="process",
        _input=io.BytesIO(back.getvalue()),
        quiet=True,
        event_handler=lambda event: seen.append(event) or True,  # True: keep it
        **{**job, "private_data_dir": str(caller)},
    )
    assert (done.status, done.rc) == ("successful", 0)
    assert event_shape(seen) == event_shape(local.events)
    assert done.stats == local.stats
    assert (caller / "artifacts" / "streamed" / "status").read_text() == "successful"
