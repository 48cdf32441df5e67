"""`containerrunner session start|stop|list` and `run/exec --session`, in podman and docker:
the session outlives the CLI, its calls run in its one container, `stop` removes it, a killed
holder's container is reaped by the next job, and a bad ID is one clear line with exit 1."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from containerrunner.session_record import live_sessions
from tests.conftest import EE_IMAGE, our_containers

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"


def cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", *args],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def listed(ident: str, cwd: Path) -> dict[str, Any] | None:
    proc = cli("session", "list", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        item = json.loads(line)
        if item["ident"] == ident:
            return dict(item)
    return None


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("containerrunner: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def started(engine: Engine, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A session started by the CLI with tmp_path mounted; stopped afterwards in any case."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(DEMO, work / "demo", ignore=shutil.ignore_patterns("artifacts"))
    proc = cli(
        "session", "start", "--engine", engine.name, "--image", EE_IMAGE, "--mount", str(work),
        "-i", f"e2e-{engine.name}-{os.getpid()}", cwd=work,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ident = proc.stdout.strip()
    try:
        yield ident, work
    finally:
        record = next((r for r in live_sessions() if r.ident == ident), None)
        if record is not None:
            cli("session", "stop", ident, cwd=work)


def test_a_started_session_runs_jobs_and_commands_and_stop_removes_it(
    engine: Engine, started: tuple[str, Path]
) -> None:
    ident, work = started
    item = listed(ident, work)
    assert item is not None, "session list does not show the started session"
    assert (item["engine"], item["image"], item["user_mounts"]) == (
        engine.name, EE_IMAGE, [str(work)],
    )  # fmt: skip
    holder = item["pid"]
    assert our_containers(engine, holder) == [item["container"]]  # held by the daemon

    run = cli("run", str(work / "demo"), "-p", "site.yml", "-q", "--session", ident[:12], cwd=work)
    assert run.returncode == 0, run.stderr
    artifacts = next((work / "demo" / "artifacts").iterdir())
    provenance = json.loads((artifacts / "provenance.json").read_text())
    assert provenance.get("container_name") == item["container"]
    assert len(list((artifacts / "job_events").glob("*.json"))) == 38

    # two execs see the same container: a file one writes outside the mounts, the next reads
    write = cli("exec", "--session", ident, "--", "sh", "-c", "echo warm > /tmp/mark", cwd=work)
    assert write.returncode == 0, write.stderr
    read = cli("exec", "--session", ident, "--", "cat", "/tmp/mark", cwd=work)
    assert (read.returncode, read.stdout) == (0, "warm\n"), read.stderr
    assert our_containers(engine, holder) == [item["container"]], "a call made a container"

    elsewhere = work.parent / "elsewhere"
    shutil.copytree(work / "demo", elsewhere)
    refused = cli("run", str(elsewhere), "-p", "site.yml", "-q", "--session", ident, cwd=work)
    assert_one_line_error(refused, str(elsewhere), "not mounted")

    stop = cli("session", "stop", ident, cwd=work)
    assert stop.returncode == 0, stop.stderr
    assert our_containers(engine, holder) == []
    assert listed(ident, work) is None
    assert not os.path.exists(item["runtime_dir"])
    again = cli("session", "stop", ident, cwd=work)
    assert_one_line_error(again, ident, "no running session")


def test_a_killed_holders_session_goes_with_the_next_job(
    engine: Engine, started: tuple[str, Path]
) -> None:
    ident, work = started
    item = listed(ident, work)
    assert item is not None
    pidfd = os.pidfd_open(item["pid"])
    try:
        os.kill(item["pid"], signal.SIGKILL)
        assert select.select([pidfd], [], [], 30)[0], "the holder outlived SIGKILL"
    finally:
        os.close(pidfd)
    # gone from the list at once (its holder is dead), its container until the next job
    assert listed(ident, work) is None
    containerrunner.run_command("true", [], host_cwd=str(work))  # any job reaps
    assert our_containers(engine, item["pid"]) == []
    assert not os.path.exists(item["runtime_dir"])


def test_a_bad_session_id_is_one_clear_error(tmp_path: Path) -> None:
    shutil.copytree(DEMO, tmp_path / "demo", ignore=shutil.ignore_patterns("artifacts"))
    for args in (
        ("run", str(tmp_path / "demo"), "-p", "site.yml", "--session", "no-such-session"),
        ("exec", "--session", "no-such-session", "--", "true"),
        ("session", "stop", "no-such-session"),
    ):
        assert_one_line_error(cli(*args, cwd=tmp_path), "'no-such-session'", "session list")
    assert not (tmp_path / "demo" / "artifacts").exists()
