"""run_process with a real ansible-playbook on the host (no container engine needed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from containerrunner.isolation.types import Invocation
from containerrunner.process import ProcessControls, run_process
from tests.unit.test_process_support import Collector, make_fifo, pid_gone, wait_eof

pytestmark = pytest.mark.integration

ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
SECRET = "integration-s3cret"

needs_ansible = pytest.mark.skipif(
    ANSIBLE_PLAYBOOK is None, reason="ansible-playbook is not installed next to this python"
)


def _playbook(tmp_path: Path, body: str) -> Invocation:
    play = tmp_path / "play.yml"
    play.write_text(body)
    assert ANSIBLE_PLAYBOOK is not None
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "ANSIBLE_HOME": str(tmp_path / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible" / "tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    return Invocation(
        argv=(ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(play)),
        cwd=str(tmp_path),
        env=env,
        container_name=None,
        engine=None,
    )


@needs_ansible
def test_playbook_with_pipes(tmp_path: Path) -> None:
    out, err = Collector(), Collector()
    result = run_process(
        _playbook(
            tmp_path,
            """
- hosts: localhost
  gather_facts: false
  tasks:
    - debug: {msg: "hello from the playbook"}
""",
        ),
        ProcessControls(stdout=out, stderr=err, job_timeout=120),
    )
    assert (result.rc, result.outcome) == (0, "successful"), err.text
    assert "hello from the playbook" in out.text
    assert "ok=1" in out.text


@needs_ansible
def test_vars_prompt_answered_in_pexpect_mode(tmp_path: Path) -> None:
    out = Collector()
    result = run_process(
        _playbook(
            tmp_path,
            f"""
- hosts: localhost
  gather_facts: false
  vars_prompt:
    - name: the_secret
      prompt: Enter the secret
      private: true
  tasks:
    - assert:
        that: the_secret == "{SECRET}"
        quiet: true
""",
        ),
        ProcessControls(
            mode="pexpect",
            passwords={r"Enter the secret:\s*$": SECRET},
            stdout=out,
            job_timeout=120,
        ),
    )
    assert (result.rc, result.outcome) == (0, "successful"), out.text
    assert "Enter the secret" in out.text
    assert SECRET not in out.text


@needs_ansible
def test_cancel_stops_ansible_and_every_process_it_started(tmp_path: Path) -> None:
    # The task's shell opens a FIFO for writing, says "ready" on it and execs a long sleep that
    # keeps it open. cancel_callback reads the FIFO, so the cancel comes once the task runs;
    # after the cancel, EOF on the FIFO shows the sleep (a great-grandchild) is gone too.
    fifo = tmp_path / "fifo"
    fifo_fd = make_fifo(fifo)
    pids: list[int] = []
    seen = bytearray()

    def cancel() -> bool:
        with contextlib.suppress(BlockingIOError):  # nothing written yet
            seen.extend(os.read(fifo_fd, 64))
        return b"ready" in seen

    try:
        result = run_process(
            _playbook(
                tmp_path,
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - shell: "exec 3>{fifo}; echo ready >&3; exec sleep 120"
""",
            ),
            ProcessControls(cancel_callback=cancel, job_timeout=120, on_start=pids.append),
        )
        assert result.outcome == "canceled"
        assert result.reason == "canceled by cancel_callback"
        assert result.rc != 0  # ansible-playbook handles SIGTERM itself: its own exit code
        assert pid_gone(pids[0])
        assert wait_eof(fifo_fd), "the task's sleep still holds the FIFO: it was not killed"
    finally:
        os.close(fifo_fd)
