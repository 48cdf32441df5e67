"""payloads: AnsiballZ payload dirs told to be a job's by their maker, on real processes that
make one as Ansible's module wrapper does (`tempfile.mkdtemp` in their temp dir, then wait);
and the lifecycle removing those a stopped host process's descendants made."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from containerrunner.payloads import payload_dirs_of, python_temp_dir
from containerrunner.process import ProcessControls, run_process
from containerrunner.procinfo import descendants, started_at
from tests.unit.test_process_support import Collector, py

# a module wrapper's first steps: its payload dir, named as AnsiballZ names it; then it waits
WRAPPER = textwrap.dedent(
    """
    import os, sys, tempfile, time
    made = tempfile.mkdtemp(prefix="ansible_ansible.legacy.command_payload_")
    open(os.path.join(made, "ansible_ansible.legacy.command_payload.zip"), "wb").close()
    print(made, flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def wrappers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def start_wrapper(wrappers: list[subprocess.Popen[str]], temp: Path, **env: str) -> tuple[int, str]:
    """A wrapper with TMPDIR `temp`; its pid and the payload dir it made."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRAPPER], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(temp), **env},
    )  # fmt: skip
    wrappers.append(child)
    assert child.stdout is not None
    return child.pid, child.stdout.readline().strip()


def test_a_job_s_wrapper_s_dir_is_found_and_another_process_s_is_not(
    wrappers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    ours, made = start_wrapper(wrappers, tmp_path)
    # makers are told apart by when they started: the next one starts clearly later than the
    # clocks' slack (not a wait for anything to happen)
    ours_started = started_at(ours)
    assert ours_started is not None
    time.sleep(max(0.0, ours_started + 0.2 - time.time()))
    theirs, their_dir = start_wrapper(wrappers, tmp_path)  # another job's, in the same dir
    assert os.path.dirname(made) == str(tmp_path)
    assert payload_dirs_of([ours]) == {made}
    assert payload_dirs_of([theirs]) == {their_dir}
    assert payload_dirs_of([ours, theirs]) == {made, their_dir}


def test_a_dir_made_before_the_job_s_wrappers_started_is_not_theirs(
    wrappers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    old = tmp_path / "ansible_ansible.legacy.command_payload_leftover"
    old.mkdir()
    os.utime(old, (1_000_000_000, 1_000_000_000))  # long before: a dead wrapper's
    ours, made = start_wrapper(wrappers, tmp_path)
    assert payload_dirs_of([ours]) == {made}


def test_a_process_that_is_not_python_makes_no_payload_dir(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"], env={**os.environ, "TMPDIR": str(tmp_path)}) as child:
        try:
            (tmp_path / "ansible_x_payload_abc").mkdir()
            assert payload_dirs_of([child.pid]) == set()
        finally:
            child.kill()


def test_the_temp_dir_is_found_as_tempfile_finds_it(
    wrappers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    # TMPDIR names no dir: TEMP is next, as tempfile.gettempdir() would take it
    (tmp_path / "temp").mkdir()
    pid, made = start_wrapper(wrappers, tmp_path / "none", TEMP=str(tmp_path / "temp"))
    assert python_temp_dir(pid) == str(tmp_path / "temp") == os.path.dirname(made)


def test_descendants_by_parent_pid_and_a_start_time_on_the_clock() -> None:
    script = "sleep 60 & echo $!; wait"
    with subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        try:
            assert descendants(child.pid) == [child.pid, grandchild]
            assert os.getpid() not in descendants(child.pid)
            started = started_at(grandchild)
            assert started is not None
            assert abs(started - os.stat(f"/proc/{grandchild}").st_ctime) < 2.0
        finally:
            os.kill(grandchild, signal.SIGKILL)
            child.kill()
        child.stdout.close()


# the job: a module wrapper as its child (in the job's process group, or in a session of its
# own), which says its pid and payload dir
JOB = """
    import subprocess, sys, time
    wrapper = subprocess.Popen([sys.executable, "-c", {wrapper!r}], start_new_session={own!r})
    print("pid", wrapper.pid, flush=True)
    time.sleep(60)
"""


def stopped_job(tmp_path: Path, own_session: bool) -> tuple[int, str]:
    """run_process of JOB canceled once its wrapper made its payload dir: the wrapper's pid
    and that dir."""
    out = Collector()
    ready = out.event("ansible_")
    result = run_process(
        py(JOB.format(wrapper=WRAPPER, own=own_session), TMPDIR=str(tmp_path)),
        ProcessControls(cancel_callback=ready.is_set, cancel_poll=0.05, stdout=out),
    )
    assert result.outcome == "canceled"
    words = out.text.split()
    made = words[2]
    assert words[0] == "pid" and made.startswith(str(tmp_path / "ansible_")), out.text
    return int(words[1]), made


def test_a_stopped_host_job_leaves_no_payload_dir_of_its_descendants(tmp_path: Path) -> None:
    """run_process without before_stop: the payload dir a module wrapper (a grandchild)
    made goes once the job was canceled and the wrapper ended."""
    _pid, made = stopped_job(tmp_path, own_session=False)
    assert not os.path.exists(made), "the payload dir is left"


def test_a_payload_dir_stays_while_its_maker_outlives_the_stop(tmp_path: Path) -> None:
    """A wrapper in a session of its own is not reached by the stop (of the job's process
    group): its payload dir, which it may still use, stays."""
    pid, made = stopped_job(tmp_path, own_session=True)
    try:
        assert os.path.isdir(made)
    finally:
        os.kill(pid, signal.SIGKILL)
