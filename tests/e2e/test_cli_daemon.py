"""`start` + `is-alive` + `stop`: the job runs in a daemon and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import our_containers

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"

LONG_PLAYBOOK = """\
- name: Long play
  hosts: web1
  gather_facts: false
  tasks:
    - name: Sleep a long time
      ansible.builtin.command: sleep 300
"""


def cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("artifacts"))
    (target / "project" / "long.yml").write_text(LONG_PLAYBOOK)
    return target


def _sleeping(demo: Path, ident: str) -> bool:
    events = demo / "artifacts" / ident / "job_events"
    return any("Sleep a long time" in p.read_text() for p in events.glob("*.json"))


def test_start_is_alive_stop_on_the_host(demo: Path) -> None:
    ident = "daemon-local"
    started = cli("start", str(demo), "-p", "long.yml", "-i", ident, cwd=demo)
    assert started.returncode == 0, started.stderr
    pid = int((demo / "pid").read_text())
    assert alive(pid)
    assert cli("is-alive", str(demo), cwd=demo).returncode == 0
    wait_for(lambda: _sleeping(demo, ident), 60, "the long task to start")

    stopped = cli("stop", str(demo), cwd=demo)
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid)
    assert not (demo / "pid").exists()
    assert cli("is-alive", str(demo), cwd=demo).returncode == 1
    status = (demo / "artifacts" / ident / "status").read_text().strip()
    assert status == "canceled"
    ps = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True)
    leftover = [p for p in ps.stdout.split() if int(p) != os.getpid()]
    assert not leftover, f"sleep 300 still running: {leftover}"


def test_start_is_alive_stop_in_a_container(demo: Path, engine: Any) -> None:
    from tests.conftest import EE_IMAGE

    ident = f"daemon-{engine.name}"
    name = f"containerrunner_{ident}"
    started = cli(
        "start",
        str(demo),
        "-p",
        "long.yml",
        "-i",
        ident,
        "--engine",
        engine.name,
        "--container-image",
        EE_IMAGE,
        cwd=demo,
    )
    assert started.returncode == 0, started.stderr
    pid = int((demo / "pid").read_text())
    assert cli("is-alive", str(demo), cwd=demo).returncode == 0
    wait_for(lambda: name in our_containers(engine), 60, f"container {name}")
    wait_for(lambda: _sleeping(demo, ident), 60, "the long task to start")

    stopped = cli("stop", str(demo), cwd=demo)
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid)
    assert cli("is-alive", str(demo), cwd=demo).returncode == 1
    assert name not in our_containers(engine)
    assert not (demo / "pid").exists()


def test_start_reports_a_bad_job_at_once(demo: Path) -> None:
    proc = cli("start", str(demo), "-p", "missing.yml", cwd=demo)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "missing.yml" in proc.stderr
    assert not (demo / "pid").exists()
