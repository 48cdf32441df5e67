"""The job's ssh-agent (sshagent.py): a real ssh-agent, started and stopped; no containers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from containerrunner import sshagent
from containerrunner.sshagent import SshAgent


def key_text(tmp_path: Path) -> str:
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.read_text()


def gone(pid: int) -> bool:
    """No such process, or only its zombie (it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_stop_returns_once_the_agent_has_exited(tmp_path: Path) -> None:
    """The agent daemonizes (not our child): stop() waits for its exit, so no check made
    right after the job's end can still see it."""
    agent = SshAgent.start(str(tmp_path / "agent.sock"), key_text(tmp_path))
    assert not gone(agent.pid)
    agent.stop()
    assert gone(agent.pid)
    assert not (tmp_path / "agent.sock").exists()


def test_an_agent_that_does_not_end_on_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped agent (SIGSTOP: its SIGTERM stays pending) is SIGKILLed after the wait."""
    monkeypatch.setattr(sshagent, "AGENT_EXIT_TIMEOUT", 0.2)
    agent = SshAgent.start(str(tmp_path / "agent.sock"), key_text(tmp_path))
    os.kill(agent.pid, signal.SIGSTOP)
    agent.stop()
    assert gone(agent.pid)


def test_stop_of_an_agent_that_is_gone_already(tmp_path: Path) -> None:
    agent = SshAgent.start(str(tmp_path / "agent.sock"), key_text(tmp_path))
    os.kill(agent.pid, signal.SIGKILL)
    agent.stop()  # no error
    assert gone(agent.pid)
    assert not (tmp_path / "agent.sock").exists()
