"""procinfo.signal_and_wait on real processes (children of this test)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from containerrunner.procinfo import signal_and_wait

# a Python child that ignores SIGTERM and says so on stdout once it does
DEAF = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        child.kill()
        child.wait()


def start(children: list[subprocess.Popen[bytes]], *argv: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(argv, stdout=subprocess.PIPE)
    children.append(child)
    return child


def test_a_process_that_ends_on_the_signal_is_not_left(
    children: list[subprocess.Popen[bytes]],
) -> None:
    child = start(children, "sleep", "60")
    assert signal_and_wait([child.pid], signal.SIGTERM, 5.0) == []
    assert child.wait(timeout=5) == -signal.SIGTERM


def test_a_process_that_ignores_it_is_left_after_the_timeout(
    children: list[subprocess.Popen[bytes]],
) -> None:
    deaf = start(children, sys.executable, "-c", DEAF)
    assert deaf.stdout is not None and deaf.stdout.readline() == b"ready\n"
    other = start(children, "sleep", "60")
    assert signal_and_wait([deaf.pid, other.pid], signal.SIGTERM, 0.3) == [deaf.pid]
    assert deaf.poll() is None
    assert signal_and_wait([deaf.pid], signal.SIGKILL, 5.0) == []
    assert deaf.wait(timeout=5) == -signal.SIGKILL


def test_a_pid_that_is_gone_is_skipped(children: list[subprocess.Popen[bytes]]) -> None:
    child = start(children, "true")
    child.wait()
    assert signal_and_wait([child.pid], signal.SIGTERM, 5.0) == []
