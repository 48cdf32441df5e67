"""An ssh-agent for one job: the key lives in the agent's memory, never in a file.

The agent's socket sits in the job's private runtime dir, which is mounted into the container,
and SSH_AUTH_SOCK points at it; the agent is killed when the job ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass

from containerrunner.errors import CommandError, ConfigurationError
from containerrunner.procinfo import signal_and_wait

# seconds the agent may take to exit after SIGTERM (then SIGKILL), and again after SIGKILL
AGENT_EXIT_TIMEOUT = 5.0


@dataclass
class SshAgent:
    socket: str
    pid: int

    @classmethod
    def start(cls, socket_path: str, key: str) -> SshAgent:
        """Start `ssh-agent -a socket_path` and load `key` (the key's text) with `ssh-add -`."""
        try:
            proc = subprocess.run(
                ["ssh-agent", "-s", "-a", socket_path],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
        except FileNotFoundError:
            raise ConfigurationError(
                "ssh_key needs ssh-agent and ssh-add on the host (Debian: openssh-client)"
            ) from None
        match = re.search(r"SSH_AGENT_PID=(\d+)", proc.stdout)
        if proc.returncode != 0 or match is None:
            raise CommandError(["ssh-agent", "-s", "-a", socket_path], proc.returncode, proc.stderr)
        agent = cls(socket=socket_path, pid=int(match.group(1)))
        text = key if key.endswith("\n") else key + "\n"
        add = subprocess.run(
            ["ssh-add", "-q", "-"],
            input=text,
            capture_output=True,
            text=True,
            env={**os.environ, "SSH_AUTH_SOCK": socket_path},
            check=False,
            timeout=30,
        )
        if add.returncode != 0:
            agent.stop()
            detail = add.stderr.strip() or "ssh-add failed"
            raise ConfigurationError(f"ssh_key could not be loaded into ssh-agent: {detail}")
        return agent

    def stop(self) -> None:
        """SIGTERM to the agent and its socket removed; returns once the agent has exited (its
        pidfd, not polling; SIGKILL after AGENT_EXIT_TIMEOUT s), so that the agent never
        outlives the job that started it. The agent is not our child (it daemonized), so
        its exit is all there is to wait for."""
        try:
            if signal_and_wait([self.pid], signal.SIGTERM, AGENT_EXIT_TIMEOUT):
                signal_and_wait([self.pid], signal.SIGKILL, AGENT_EXIT_TIMEOUT)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket)
