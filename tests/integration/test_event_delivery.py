"""Issue 11, item 2, with real ansible-playbook: a FIFO fault in the plugin's process loses no
event and doubles none.

The fault is injected into the Ansible process by a `sitecustomize` module (on PYTHONPATH, in
the project dir, so it is found on the host and in the container alike) that wraps `os.write`:
the Nth write to the event FIFO writes half its line, then fails with EIO ("lost": the plugin
falls back to event files for the rest of the run) or kills the process ("killed").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.events import load_events
from tests.integration.support import copy_examples

pytestmark = pytest.mark.integration

FAULT = r"""
import errno, os, signal, stat

_fifo = os.environ.get("CONTAINERRUNNER_EVENT_FIFO", "")
_at = int(os.environ.get("FAULT_AT", "0"))
_mode = os.environ.get("FAULT_MODE", "lost")
try:
    _inode = os.stat(_fifo).st_ino if _fifo and _at else None
except OSError:
    _inode = None
if _inode is not None:
    _write, _count = os.write, [0]

    def _faulty_write(fd, data):
        try:
            info = os.fstat(fd)
        except OSError:
            info = None
        if info is not None and stat.S_ISFIFO(info.st_mode) and info.st_ino == _inode:
            _count[0] += 1
            if _count[0] == _at:
                _write(fd, bytes(data[: len(data) // 2]))
                if _mode == "killed":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise OSError(errno.EIO, "injected FIFO fault")
        return _write(fd, data)

    os.write = _faulty_write
"""


def _run(where: dict[str, Any], tmp_path: Path, mode: str, at: int) -> tuple[Any, list[Any]]:
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "sitecustomize.py").write_text(FAULT)
    seen: list[dict[str, Any]] = []
    r = containerrunner.run(
        private_data_dir=str(pdd),
        playbook="site.yml",
        envvars={"PYTHONPATH": ".", "FAULT_AT": str(at), "FAULT_MODE": mode},
        event_handler=lambda e: seen.append(e) is None,
        **where,
    )
    return r, seen


def _assert_once_in_order(r: Any, seen: list[dict[str, Any]]) -> None:
    counters = [e["counter"] for e in seen]
    assert counters == list(range(1, len(seen) + 1))  # once each, in order, no gap
    assert len({e["uuid"] for e in seen}) == len(seen)
    on_disk = [(e["counter"], e["uuid"]) for e in load_events(r.config.artifact_dir)]
    assert on_disk == [(e["counter"], e["uuid"]) for e in seen]
    assert [(e["counter"], e["uuid"]) for e in r.events] == on_disk


def test_lost_fifo_line_events_arrive_once_in_order(where: dict[str, Any], tmp_path: Path) -> None:
    r, seen = _run(where, tmp_path, "lost", 10)
    output = r.stdout.read() + r.stderr.read()
    assert (r.status, r.rc) == ("successful", 0), output
    assert "injected FIFO fault" in output  # the plugin said why it fell back
    _assert_once_in_order(r, seen)
    names = [e["event"] for e in seen]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert names.count("playbook_on_task_start") == 5
    assert len(seen) > 20  # most of the run came as files
    assert r.stats is not None and r.stats["ok"] == {"web1": 4, "web2": 4, "db1": 5}


def test_plugin_killed_mid_line_delivers_what_came_before(tmp_path: Path) -> None:
    r, seen = _run({"process_isolation": False}, tmp_path, "killed", 10)
    assert r.status == "failed"
    _assert_once_in_order(r, seen)
    assert seen[0]["event"] == "playbook_on_start"
    assert len(seen) == 9  # the 10th died with its writer
