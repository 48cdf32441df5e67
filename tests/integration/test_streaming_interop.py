"""The wire format against ansible-runner 2.4.3 itself, on the demo, both ways.

Real parts: ansible-runner's `transmit`, `worker` and `process` commands from this venv,
Ansible running the demo playbook locally (no engine). Our reader parses what ansible-runner
writes; what our writer re-emits is accepted by ansible-runner's `process`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from containerrunner.streaming import wire
from tests.integration.support import EXAMPLES, ansible_on_path

__all__ = ["ansible_on_path"]

RUNNER = str(Path(sys.executable).with_name("ansible-runner"))


def _run(argv: list[str], stdin: bytes = b"") -> bytes:
    done = subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=300)
    return done.stdout


def test_ansible_runner_stream_parses_and_our_rewrite_feeds_its_process(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(EXAMPLES, demo)
    sent = _run([RUNNER, "transmit", str(demo), "-p", "site.yml"])

    items = list(wire.read_items(io.BytesIO(sent)))
    assert [i.kind for i in items] == ["kwargs", "zipfile", "eof"]
    assert items[0].data["kwargs"]["playbook"] == "site.yml"
    names = zipfile.ZipFile(io.BytesIO(items[1].payload)).namelist()
    assert "project/site.yml" in names and "inventory/hosts" in names

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    back = subprocess.run(
        [RUNNER, "worker"], input=sent, capture_output=True, check=True, timeout=300, env=env
    ).stdout
    results = list(wire.read_items(io.BytesIO(back)))
    statuses = [i.data["status"] for i in results if i.kind == "status"]
    assert statuses[0] == "starting" and statuses[-1] == "successful"
    events = [i.data for i in results if i.kind == "event"]
    assert events[0]["event"] == "playbook_on_start"
    assert events[-1]["event"] == "playbook_on_stats"
    assert [i.kind for i in results[-2:]] == ["zipfile", "eof"]

    rewritten = io.BytesIO()
    for item in results:
        if item.kind in ("status", "event"):
            wire.write_line(rewritten, item.data)
        elif item.kind == "zipfile":
            wire.write_zip(rewritten, item.payload)
    wire.write_eof(rewritten)
    caller = tmp_path / "caller"
    caller.mkdir()
    _run([RUNNER, "process", str(caller)], rewritten.getvalue())
    artifacts = caller / "artifacts"  # process without --ident unpacks here
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"
    event_files = sorted((artifacts / "job_events").iterdir())
    assert len(event_files) == len(events)
    assert json.loads(event_files[0].read_text())["uuid"] in {e["uuid"] for e in events}
