"""`containerrunner run` as a user types it: on the host, in podman and in docker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from containerrunner.isolation.engine import detect_engine

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"

SLOW_PLAYBOOK = """\
- name: Slow play
  hosts: all
  gather_facts: false
  tasks:
    - name: Quick task
      ansible.builtin.debug:
        msg: hi
    - name: Slow task sleeping
      ansible.builtin.command: sleep 3
      changed_when: false
"""

FAILING_PLAYBOOK = """\
- name: Failing play
  hosts: all
  gather_facts: false
  tasks:
    - name: This task fails
      ansible.builtin.command: "false"
"""


def cli_env() -> dict[str, str]:
    """The environment for the command: the venv's bin first (ansible-playbook for local runs)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.pop("COLUMNS", None)
    return env


def cli(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", *args],
        cwd=cwd,
        env=cli_env(),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def where_flags(where: dict[str, Any]) -> list[str]:
    if not where["process_isolation"]:
        return []
    return [
        "--engine",
        where["process_isolation_executable"],
        "--container-image",
        where["container_image"],
    ]


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of examples/demo, so artifacts do not land in the repository."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("artifacts"))
    (target / "project" / "slow.yml").write_text(SLOW_PLAYBOOK)
    (target / "project" / "fail.yml").write_text(FAILING_PLAYBOOK)
    return target


def test_run_demo(demo: Path, where: dict[str, Any]) -> None:
    proc = cli("run", str(demo), "-p", "site.yml", "-i", "demo1", *where_flags(where), cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: [web1] => Say hello (ok)" in proc.stdout
    assert "failed: [web2] => Check an optional service (failed, ignored on web2)" in proc.stdout
    for host in ("web1", "web2", "db1"):
        assert f"{host} : ok=" in proc.stdout
    assert "successful (rc 0)" in proc.stdout
    assert (demo / "artifacts" / "demo1" / "rc").read_text().strip() == "0"


def test_run_failing_playbook_exits_non_zero(demo: Path, where: dict[str, Any]) -> None:
    proc = cli("run", str(demo), "-p", "fail.yml", *where_flags(where), cwd=demo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "failed: [web1] => This task fails" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_run_module(demo: Path, where: dict[str, Any]) -> None:
    proc = cli(
        "run",
        str(demo),
        "-m",
        "ansible.builtin.ping",
        "--hosts",
        "web",
        *where_flags(where),
        cwd=demo,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: [web1]" in proc.stdout and "ok: [web2]" in proc.stdout


def test_run_json_lines(demo: Path) -> None:
    proc = cli("run", str(demo), "-p", "site.yml", "-j", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert "runner_on_ok" in names


def test_run_junit_copies_the_report(demo: Path, tmp_path: Path) -> None:
    from xml.etree import ElementTree as ET

    report = tmp_path / "report.xml"
    proc = cli("run", str(demo), "-p", "site.yml", "-q", "--junit", str(report), cwd=demo)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites" and int(root.get("tests", 0)) > 0
    assert root.get("failures") == "0"
    bad = cli("run", str(demo), "-p", "site.yml", "-q", "--junit", str(tmp_path / "no" / "x"),
              cwd=demo)  # fmt: skip
    assert bad.returncode == 1 and "--junit" in bad.stderr and "Traceback" not in bad.stderr


def test_run_debug_shows_the_engine_argv(demo: Path, engine: Any) -> None:
    from tests.conftest import EE_IMAGE

    proc = cli(
        "run",
        str(demo),
        "-p",
        "site.yml",
        "--engine",
        engine.name,
        "--container-image",
        EE_IMAGE,
        "--debug",
        "-q",
        cwd=demo,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"debug: running: {engine.executable} run" in proc.stderr


def test_run_start_timeout_ends_in_the_start_phase(demo: Path, engine: Any) -> None:
    from tests.conftest import EE_IMAGE, our_containers

    proc = cli(
        "run", str(demo), "-p", "site.yml", "-q", "-i", "start1", "--engine", engine.name,
        "--container-image", EE_IMAGE, "--start-timeout", "0.1", cwd=demo,
    )  # fmt: skip
    assert proc.returncode == 254, proc.stdout + proc.stderr
    assert "timeout (rc 254)" in proc.stdout
    assert "start timeout after 0.1s" in proc.stderr and "(start phase: " in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "containerrunner_start1" not in our_containers(engine)
    bad = cli("run", str(demo), "-p", "site.yml", "-q", "--termination-grace", "-1", cwd=demo)
    assert bad.returncode != 0 and "termination_grace" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_live_view_under_a_pty(demo: Path, where: dict[str, Any]) -> None:
    ident = "live1"
    args = ["-m", "containerrunner", "run", str(demo), "-p", "slow.yml", "-i", ident]
    args += where_flags(where)
    env = cli_env() | {"TERM": "xterm-256color"}
    child = pexpect.spawn(
        sys.executable,
        args,
        cwd=str(demo),
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 120),
    )
    try:
        # The slow task's name shows while it runs, before the play is over.
        child.expect("Slow task sleeping")
        events = demo / "artifacts" / ident / "job_events"
        assert child.isalive()
        assert not any("playbook_on_stats" in p.read_text() for p in events.glob("*.json"))
        for host in ("db1", "web1", "web2"):
            child.expect(host)
        child.expect("successful")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_quiet_under_a_pty_prints_plain_lines(demo: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "containerrunner", "run", str(demo), "-p", "site.yml", "-q"],
        cwd=str(demo),
        env=cli_env() | {"TERM": "xterm"},
        encoding="utf-8",
        timeout=120,
    )
    try:
        child.expect_exact("ok: [web1] => Say hello (ok)")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_ctrl_c_cancels_the_job(demo: Path, where: dict[str, Any]) -> None:
    ident = "cancel1"
    args = ["-m", "containerrunner", "run", str(demo), "-p", "slow.yml", "-i", ident]
    child = pexpect.spawn(
        sys.executable,
        args + where_flags(where),
        cwd=str(demo),
        env=cli_env() | {"TERM": "xterm"},
        encoding="utf-8",
        timeout=120,
    )
    try:
        child.expect("Slow task sleeping")
        child.sendintr()
        child.expect("canceled")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus not in (None, 0)
    assert (demo / "artifacts" / ident / "status").read_text().strip() == "canceled"
    if where["process_isolation"]:
        from tests.conftest import our_containers

        engine = detect_engine(where["process_isolation_executable"])
        assert "containerrunner_cancel1" not in our_containers(engine)
