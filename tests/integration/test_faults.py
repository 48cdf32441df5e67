"""Fault trials (issue 11, item 1): a job is stopped or broken mid-task, again and again, on the
host, in podman and in docker. After each trial: the right status and rc, a readable artifacts
dir (`status`, `rc`), and nothing of ours left — no container, no runtime dir, FIFO or
ssh-agent. `--fault-trials N` (or CONTAINERRUNNER_FAULT_TRIALS) sets the repetitions per
fault and place (CI: 2; the issue's long trial: 20).

Every fault waits for the slow task to have started (an event handler or the CLI's JSON line
says so), never on a sleep. The docker daemon trials kill and restart a private dockerd of the
session's own (tests/integration/dockerd.py), never the machine's.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import ArtifactWriteError, EngineError
from containerrunner.isolation.containerize import container_name
from containerrunner.isolation.engine import Engine, make_engine
from containerrunner.procinfo import command_line, processes_mentioning
from containerrunner.tempdirs import PREFIX, ours_in_tempdir, read_owner
from tests.conftest import EE_IMAGE, EngineProbe, our_containers, require_engine
from tests.integration.dockerd import PrivateDockerd
from tests.integration.support import REPO, container_kwargs, copy_examples, make_ssh_key

pytestmark = pytest.mark.integration

SLOW = (
    "- hosts: db1\n  gather_facts: false\n  tasks:\n"
    "    - name: slow task\n      command: sleep 600\n"
)
LIMIT = 120  # seconds; only so that a bug fails a trial instead of hanging it


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "trial" in metafunc.fixturenames:
        count = int(metafunc.config.getoption("--fault-trials"))
        metafunc.parametrize("trial", range(count))


# In the environment of this test process while a trial runs: every process its jobs start
# (an ssh-agent, an owner subprocess and its jobs) inherits it.
TRIAL_MARK = "CONTAINERRUNNER_FAULT_TRIAL"


def ssh_agents_of(mark: str) -> list[int]:
    """The live ssh-agents that jobs of the trial `mark` started (their environment carries
    it) with their socket in a containerrunner runtime dir: not other processes' agents."""
    return [
        pid
        for pid in processes_mentioning(f"{TRIAL_MARK}={mark}\0")
        if (argv := command_line(pid))
        and os.path.basename(argv[0]) == "ssh-agent"
        and any(os.path.basename(os.path.dirname(arg)).startswith(PREFIX) for arg in argv)
    ]


@contextlib.contextmanager
def trial_mark() -> Iterator[str]:
    """A mark of its own in this process's environment for the block (see TRIAL_MARK)."""
    mark, before = secrets.token_hex(8), os.environ.get(TRIAL_MARK)
    os.environ[TRIAL_MARK] = mark
    try:
        yield mark
    finally:
        if before is None:
            del os.environ[TRIAL_MARK]
        else:
            os.environ[TRIAL_MARK] = before


@contextlib.contextmanager
def nothing_left(engine: Engine | None) -> Iterator[str]:
    """After the block: no container, runtime dir or ssh-agent of this process's jobs in the
    block is left (yields the block's trial mark)."""
    before = set(our_containers(engine, os.getpid())) if engine else set()
    with trial_mark() as mark:
        yield mark
    if engine is not None:
        left = set(our_containers(engine, os.getpid())) - before
        assert not left, f"containers left in {engine.name}: {sorted(left)}"
    mine = [p for p in ours_in_tempdir() if (o := read_owner(p)) and o.pid == os.getpid()]
    assert not mine, f"runtime dirs left: {mine}"
    agents = {pid: " ".join(command_line(pid)) for pid in ssh_agents_of(mark)}
    assert not agents, f"an ssh-agent of this trial's jobs is left: {agents}"


@pytest.fixture
def marked_place(where: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Engine | None, str]]:
    """`where`, its engine (None: the host) and the trial's mark (TRIAL_MARK); nothing of
    this process's jobs left after the trial."""
    engine = None
    if where["process_isolation"]:
        engine = make_engine(where["process_isolation_executable"])
    with nothing_left(engine) as mark:
        yield where, engine, mark


@pytest.fixture
def place(
    marked_place: tuple[dict[str, Any], Engine | None, str],
) -> tuple[dict[str, Any], Engine | None]:
    """`marked_place` without the mark."""
    where, engine, _mark = marked_place
    return where, engine


@pytest.fixture
def in_engine(engine: Engine) -> Iterator[tuple[dict[str, Any], Engine]]:
    """Like `place`, in podman and docker only."""
    with nothing_left(engine):
        yield container_kwargs(engine), engine


def assert_readable(artifact_dir: Path, status: str, rc: int) -> None:
    assert (artifact_dir / "status").read_text() == status
    assert (artifact_dir / "rc").read_text() == str(rc)
    for event_file in (artifact_dir / "job_events").iterdir():
        json.loads(event_file.read_text())  # every event file is whole


def start_slow(
    pdd: Path,
    where: dict[str, Any],
    key: str,
    record: list[tuple[str, object]] | None = None,
    **options: Any,
) -> tuple[threading.Thread, containerrunner.Runner]:
    """The slow playbook, once its task has started; fails at once when the job ended first
    (a timeout shorter than the start on a loaded machine), never waiting LIMIT for it.
    `record` (a test item's user_properties, in a --junitxml report with junit_family
    xunit1) gets the seconds the task took to start."""
    (pdd / "project" / "slow.yml").write_text(SLOW)
    news = threading.Event()  # the slow task started, or the job ended
    started: list[float] = []
    began = time.monotonic()

    def on_event(event: dict[str, Any]) -> bool:
        if event["event"] == "runner_on_start":
            started.append(time.monotonic() - began)
            news.set()
        return True

    thread, runner = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="slow.yml", event_handler=on_event, quiet=True,
        ssh_key=key, finished_callback=lambda _runner: news.set(), **options, **where,
    )  # fmt: skip
    assert news.wait(LIMIT), "the slow task never started"
    assert started, (
        f"the job ended before the slow task started, after {time.monotonic() - began:.1f} s: "
        f"{runner.status}, {runner.reason}"
    )
    if record is not None:
        record.append(("task_started_after", round(started[0], 2)))
    return thread, runner


# Timeouts of the timeout trials: longer than the slow task's start takes on the loaded
# machine (they count from the spawn on the host, from the container's start in an engine:
# `start_timeout`), so that they stop the job mid-task, not before the task started.
JOB_TIMEOUT = 10
IDLE_TIMEOUT = 8
TIMEOUTS: dict[str, dict[str, Any]] = {
    "job_timeout": {"timeout": JOB_TIMEOUT},
    "idle_timeout": {"idle_timeout": IDLE_TIMEOUT},
}
REASONS = {
    "job_timeout": f"job timeout after {JOB_TIMEOUT}s",
    "idle_timeout": f"idle timeout: no output for {IDLE_TIMEOUT}s",
}


@pytest.mark.parametrize("fault", ["cancel", "terminate", "kill", "job_timeout", "idle_timeout"])
def test_stopping_mid_task(
    fault: str,
    trial: int,
    place: tuple[dict[str, Any], Engine | None],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A stop of the job while its slow task runs: `canceled` (a cancel, terminate, kill) or
    `timeout` (the job or idle timeout, which the trial only waits for: the job's end), 254."""
    where, engine = place
    pdd = copy_examples(tmp_path)
    options = dict(TIMEOUTS.get(fault, {}))
    if fault in TIMEOUTS and engine is not None:  # the timeout counts from the container start
        options["start_timeout"] = LIMIT
    key = make_ssh_key(tmp_path)
    thread, runner = start_slow(
        pdd, where, key, request.node.user_properties, termination_grace=2, **options
    )
    if fault == "cancel":
        runner.cancel()
    elif fault == "terminate":
        runner.terminate(grace=1)
    elif fault == "kill":
        runner.kill()
    thread.join(LIMIT)
    assert not thread.is_alive()
    expected = "canceled" if fault in ("cancel", "terminate", "kill") else "timeout"
    assert (runner.status, runner.rc) == (expected, 254), runner.reason
    if fault in REASONS:
        assert REASONS[fault] in runner.reason
    assert_readable(Path(runner.artifact_dir), expected, 254)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh temp dir (TMPDIR) and HOME for this test and its jobs; after the test, no
    process whose environment names them is left (a job's processes inherit TMPDIR)."""
    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("HOME", str(home))
    yield tmp
    assert processes_mentioning(f"{tmp}/") == [], "a process of the job is left"


def left_in(private_tmp: Path) -> list[str]:
    """What is in the private temp dir, and in Ansible's ~/.ansible/tmp of the private HOME."""
    found = sorted(str(p) for p in private_tmp.iterdir())
    ansible_tmp = private_tmp.parent / "home" / ".ansible" / "tmp"
    return found + (sorted(str(p) for p in ansible_tmp.iterdir()) if ansible_tmp.exists() else [])


# The module's process says it runs, and the module file its parent (the AnsiballZ wrapper)
# runs from: in Ansible's remote temp dir, unless the module was pipelined.
MODULE_UP = (
    'echo "up $(tr "\\0" "\\n" < /proc/$PPID/cmdline | grep AnsiballZ_)" > "$0"; exec sleep 600'
)


def module_up_playbook(pdd: Path) -> Path:
    """`module_up.yml`: a `command` task whose process writes to a FIFO once it runs, then
    sleeps (returned: the FIFO; in the project dir, which a container sees at the same path)."""
    fifo = pdd / "project" / "module-up.fifo"
    os.mkfifo(fifo)
    argv = json.dumps(["sh", "-c", MODULE_UP, str(fifo)])
    (pdd / "project" / "module_up.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n"
        f"    - name: slow module\n      command:\n        argv: {argv}\n"
    )
    return fifo


def wait_until_up(
    fifo: Path, thread: threading.Thread, runner: containerrunner.Runner | None = None
) -> str:
    """Until the module's process wrote to `fifo` (so it runs); fails once `thread` ended
    first (the job ended: `runner`'s output says why) or after LIMIT. Returns the line
    (`up` and the path of the module's file)."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a writer's open waits for a reader
    try:
        deadline = time.monotonic() + LIMIT
        while not select.select([fd], [], [], 1.0)[0]:
            why = "" if runner is None else f"{runner.status}: {runner.stdout.read()}"
            assert thread.is_alive(), f"the job ended before its module ran ({why})"
            assert time.monotonic() < deadline, "the module never ran"
        line = os.read(fd, 4096).decode()
        assert line.startswith("up"), line
        return line
    finally:
        os.close(fd)


def assert_module_dir_gone(line: str) -> None:
    """The Ansible remote temp dir of the module that `line` (from the FIFO) names is gone
    (the local connection puts the module there unless it pipelines)."""
    module = line.removeprefix("up").strip()
    if module:  # not pipelined
        assert os.path.basename(os.path.dirname(module)).startswith("ansible-tmp-"), line
        assert not os.path.exists(os.path.dirname(module)), "the module's temp dir is left"


@pytest.mark.parametrize(
    ("where", "fault"),
    [("local", "kill"), ("local", "idle_timeout"), ("podman", "cancel"), ("docker", "cancel")],
    indirect=["where"],
)
def test_a_stopped_job_leaves_nothing_in_the_temp_dir(
    fault: str,
    place: tuple[dict[str, Any], Engine | None],
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    """A job stopped while its module runs: nothing new in the temp dir (on the host the
    module's AnsiballZ payload dir, ansible-playbook's ansible-local-* in ~/.ansible/tmp, went
    with the runtime dir) and no process of it left (`private_tmp`)."""
    where, _engine = place
    pdd = copy_examples(tmp_path)
    fifo = module_up_playbook(pdd)
    # no output while the module runs: the idle timeout counts from its start, however slow
    # the job's start was on a loaded machine
    options = {"idle_timeout": 6} if fault == "idle_timeout" else {}
    thread, runner = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="module_up.yml", quiet=True, termination_grace=2,
        **options, **where,
    )  # fmt: skip
    line = wait_until_up(fifo, thread, runner)
    if fault == "cancel":
        runner.cancel()
    elif fault == "kill":  # no grace: Ansible gets no SIGTERM to clean up after its module
        runner.kill()
    thread.join(LIMIT)
    assert not thread.is_alive()
    expected = "timeout" if fault == "idle_timeout" else "canceled"
    assert (runner.status, runner.rc) == (expected, 254)
    assert left_in(private_tmp) == []
    if where["process_isolation"] is False:  # in a container the module's dir is its own
        assert_module_dir_gone(line)


@pytest.mark.parametrize("fault", ["cancel", "kill", "job_timeout"])
def test_a_stopped_host_job_leaves_no_payload_dir_in_the_tmpdir_it_was_given(
    fault: str, private_tmp: Path, tmp_path: Path
) -> None:
    """TMPDIR in the job's envvars (its module processes make their AnsiballZ payload dir
    there, not in the runtime dir): after a stop mid-module nothing is left in it."""
    given = private_tmp / "given"
    given.mkdir()
    pdd = copy_examples(tmp_path)
    fifo = module_up_playbook(pdd)
    options: dict[str, Any] = {"timeout": 30} if fault == "job_timeout" else {}
    thread, runner = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="module_up.yml", quiet=True, termination_grace=2,
        process_isolation=False, envvars={"TMPDIR": str(given)}, **options,
    )  # fmt: skip
    wait_until_up(fifo, thread, runner)
    assert [p.name for p in given.iterdir() if "_payload_" in p.name], "no payload dir made"
    if fault == "cancel":
        runner.cancel()
    elif fault == "kill":
        runner.kill()
    thread.join(LIMIT)
    assert not thread.is_alive()
    expected = "timeout" if fault == "job_timeout" else "canceled"
    assert (runner.status, runner.rc) == (expected, 254)
    assert list(given.iterdir()) == []
    given.rmdir()
    assert left_in(private_tmp) == []


# An action that makes the task's remote temp dir (as a module transfer starts with), says so
# through a FIFO and blocks there: no process's argv names the dir (no module file yet).
STALL_ACTION = textwrap.dedent(
    """
    import signal
    from ansible.plugins.action import ActionBase

    class ActionModule(ActionBase):
        def run(self, tmp=None, task_vars=None):
            made = self._make_tmp_path()
            with open(self._task.args["fifo"], "w") as fifo:
                fifo.write("up " + made + "\\n")
            while True:
                signal.pause()
    """
)


@pytest.mark.parametrize(
    ("fault", "remote_tmp_in"),
    [
        ("cancel", "default"),
        ("kill", "default"),
        ("cancel", "project ansible.cfg"),
        ("kill", "ANSIBLE_CONFIG"),
    ],
)
def test_a_module_dir_no_process_names_yet_goes_with_the_stop(
    fault: str, remote_tmp_in: str, private_tmp: Path, tmp_path: Path
) -> None:
    """A host job stopped right after its task made its remote temp dir, before any module
    file is in it (no argv names the dir): the dir, found by its maker's pid in its name, is
    removed with the job's processes; nothing is left in the temp dir or ~/.ansible/tmp. Its
    remote_tmp: Ansible's default, or set only in an ansible.cfg (the project's, or the file
    ANSIBLE_CONFIG names): the stop reads it there as Ansible does."""
    pdd = copy_examples(tmp_path)
    fifo = pdd / "project" / "stall.fifo"
    os.mkfifo(fifo)
    (pdd / "project" / "action_plugins").mkdir()
    (pdd / "project" / "action_plugins" / "stall.py").write_text(STALL_ACTION)
    (pdd / "project" / "stall.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n"
        f"    - stall: {{fifo: {json.dumps(str(fifo))}}}\n"
    )
    remote_tmp = tmp_path / "remote tmp from cfg"
    cfg = f"[defaults]\nremote_tmp = {remote_tmp}\n"
    envvars = {}
    if remote_tmp_in == "project ansible.cfg":
        (pdd / "project" / "ansible.cfg").write_text(cfg)
    elif remote_tmp_in == "ANSIBLE_CONFIG":
        (tmp_path / "elsewhere.cfg").write_text(cfg)
        envvars["ANSIBLE_CONFIG"] = str(tmp_path / "elsewhere.cfg")
    thread, runner = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="stall.yml", quiet=True, termination_grace=2,
        process_isolation=False, envvars=envvars,
    )  # fmt: skip
    line = wait_until_up(fifo, thread, runner)
    made = Path(line.removeprefix("up").strip())
    assert made.name.startswith("ansible-tmp-") and made.is_dir(), line
    if remote_tmp_in != "default":  # the ansible.cfg took effect
        assert made.parent == remote_tmp, line
    (runner.cancel if fault == "cancel" else runner.kill)()
    thread.join(LIMIT)
    assert not thread.is_alive()
    assert (runner.status, runner.rc) == ("canceled", 254)
    assert not made.exists(), "the task's remote temp dir is left"
    assert left_in(private_tmp) == []


INTERRUPTED_CALLER = textwrap.dedent(
    """
    import os, signal, sys, threading, containerrunner
    # as in a foreground process: started from a background job (`cmd &` without job
    # control) the caller would inherit SIGINT ignored and the test's SIGINT do nothing
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pdd, fifo = sys.argv[1], sys.argv[2]
    def announce():
        fd = os.open(fifo, os.O_RDONLY)  # until the module's process writes: it runs
        line = os.read(fd, 4096).decode()
        os.close(fd)
        print(line.strip(), flush=True)
    threading.Thread(target=announce, daemon=True).start()
    try:
        containerrunner.run(private_data_dir=pdd, playbook="module_up.yml", ident="interrupted",
                            quiet=True, termination_grace=0)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def test_sigint_to_a_caller_stops_its_host_jobs_processes(
    private_tmp: Path, tmp_path: Path
) -> None:
    """SIGINT to a Python process whose main thread runs a host job (KeyboardInterrupt out of
    the job, not a cancel), with no termination grace (as after a second Ctrl-C: Ansible gets
    no SIGTERM to stop its workers): the worker and the module's process (a session of their
    own, outside the job's process group) are stopped, the module's remote temp dir in
    ~/.ansible/tmp and the runtime dir removed; the artifacts say `canceled`, 254."""
    pdd = copy_examples(tmp_path)
    fifo = module_up_playbook(pdd)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    caller = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_CALLER, str(pdd), str(fifo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    assert caller.stdout is not None
    try:
        line = caller.stdout.readline()
        assert line.startswith("up"), "the module never ran"
        caller.send_signal(signal.SIGINT)
        out, err = caller.communicate(timeout=LIMIT)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
    assert (caller.returncode, out) == (0, "interrupted\n"), err
    assert_readable(pdd / "artifacts" / "interrupted", "canceled", 254)
    assert left_in(private_tmp) == []  # and no process left: `private_tmp`
    assert_module_dir_gone(line)


def test_an_exception_in_the_caller_stops_its_host_jobs_processes(private_tmp: Path) -> None:
    """An output sink that raises while a host command runs: the process that left the job's
    process group (`setsid`) is stopped too, and the runtime dir removed."""

    class Failing:
        def write(self, text: str) -> int:
            if "up" in text:  # printed by the process in its own session
                raise RuntimeError("the sink failed")
            return len(text)

        def flush(self) -> None:
            return None

    script = "setsid sh -c 'echo up; exec sleep 600 >/dev/null 2>&1' & wait"
    with pytest.raises(RuntimeError, match="the sink failed"):
        containerrunner.run_command(
            "sh", ["-c", script], output_fd=Failing(), host_cwd=str(private_tmp.parent)
        )
    assert left_in(private_tmp) == []  # and no process left: `private_tmp`


def test_container_killed_from_outside(
    trial: int, in_engine: tuple[dict[str, Any], Engine], tmp_path: Path
) -> None:
    where, engine = in_engine
    pdd = copy_examples(tmp_path)
    thread, runner = start_slow(pdd, where, make_ssh_key(tmp_path))
    subprocess.run(engine.command("kill", container_name(runner.job.ident)), check=True,
                   capture_output=True)  # fmt: skip
    thread.join(LIMIT)
    assert not thread.is_alive()
    assert runner.status == "failed" and runner.rc not in (0, None)
    assert_readable(Path(runner.artifact_dir), "failed", runner.rc)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_cli(
    sig: signal.Signals, trial: int, place: tuple[dict[str, Any], Engine | None], tmp_path: Path
) -> None:
    where, engine = place
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "slow.yml").write_text(SLOW)
    flags = ["--engine", where["process_isolation_executable"]] if engine else []
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cli = subprocess.Popen(
        [sys.executable, "-m", "containerrunner", "run", str(pdd), "-p", "slow.yml", "-j",
         "-i", f"sig{trial}", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert cli.stdout is not None
    try:
        for line in cli.stdout:  # JSON lines: wait for the slow task to start
            if json.loads(line).get("event") == "runner_on_start":
                break
        else:
            pytest.fail(f"the CLI ended before the task started: {cli.stderr.read()}")
        cli.send_signal(sig)
        _rest, err = cli.communicate(timeout=LIMIT)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 254, err
    assert "Traceback" not in err
    artifact_dir = pdd / "artifacts" / f"sig{trial}"
    assert_readable(artifact_dir, "canceled", 254)
    if engine is not None:
        assert container_name(f"sig{trial}") not in our_containers(engine)


OWNER = textwrap.dedent(
    """
    import sys, threading, containerrunner
    where, pdd, key = eval(sys.argv[1]), sys.argv[2], sys.argv[3]
    started = threading.Event()
    def on_event(event):
        if event["event"] == "runner_on_start":
            started.set()
        return True
    thread, runner = containerrunner.run_async(private_data_dir=pdd, playbook="slow.yml",
        event_handler=on_event, quiet=True, ssh_key=open(key).read(), **where)
    started.wait(120)
    print("up", flush=True)
    thread.join()
    """
)


def test_sigkill_to_the_owner_is_cleaned_by_the_next_job(
    trial: int, marked_place: tuple[dict[str, Any], Engine | None, str], tmp_path: Path
) -> None:
    where, engine, mark = marked_place
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "slow.yml").write_text(SLOW)
    key = tmp_path / "key-text"
    key.write_text(make_ssh_key(tmp_path))
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, repr(where), str(pdd), str(key)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert owner.stdout is not None
    assert owner.stdout.readline().startswith("up"), "the owner's job did not start"
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert ssh_agents_of(mark), "the killed owner's ssh-agent is gone already?"
    containerrunner.run_command("true", [], host_cwd=str(tmp_path))  # any job reaps
    assert not [p for p in ours_in_tempdir() if (o := read_owner(p)) and o.pid == owner.pid]
    assert not ssh_agents_of(mark), "the dead owner's ssh-agent is left"
    if engine is not None:
        assert our_containers(engine, owner.pid) == []
    else:  # the host job's ansible-playbook leads its own process group: the reap stopped it
        left = subprocess.run(["pgrep", "-f", str(pdd / "project" / "slow.yml")], check=False)
        assert left.returncode == 1, "the dead owner's ansible-playbook still runs"


def test_artifacts_disk_full(
    trial: int, place: tuple[dict[str, Any], Engine | None], tmp_path: Path
) -> None:
    """The artifacts dir on a 256 KiB tmpfs: the job's output fills it (in an engine, the
    callback in the container writes there through the mount). The job ends `failed` with an
    error naming the dir, its status and rc are still written, every event file that was
    written is whole, and nothing is left (`place`)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where, _engine = place
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)], check=True)
    try:
        pdd = copy_examples(tmp_path)
        (pdd / "project" / "big.yml").write_text(
            "- hosts: db1\n  gather_facts: false\n  tasks:\n"
            "    - debug: {msg: \"{{ 'x' * 2000 }} {{ item }}\"}\n"
            '      loop: "{{ range(300) | list }}"\n'
        )
        ident = f"disk{trial}"
        with pytest.raises(ArtifactWriteError, match=f"cannot write .* in {full}/{ident}"):
            containerrunner.run(
                private_data_dir=str(pdd), playbook="big.yml", artifact_dir=str(full),
                ident=ident, quiet=True, **where,
            )  # fmt: skip
        assert_readable(full / ident, "failed", 254)
    finally:
        subprocess.run(["umount", str(full)], check=True)


@pytest.fixture(scope="session")
def private_dockerd(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]
) -> Iterator[PrivateDockerd]:
    """A dockerd of this session's own (tests/integration/dockerd.py), with the EE image."""
    require_engine(request, engine_probes, "docker")
    daemon = PrivateDockerd(EE_IMAGE)
    try:
        yield daemon
    finally:
        daemon.close()
    assert not daemon.processes(), "the private dockerd left processes"


@pytest.fixture
def on_private_dockerd(
    private_dockerd: PrivateDockerd, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, Any], Engine, PrivateDockerd]]:
    """Jobs of this test go to the private dockerd (DOCKER_HOST); nothing of ours is left on
    it afterwards (a test that kills it starts it again before it ends)."""
    monkeypatch.setenv("DOCKER_HOST", private_dockerd.host)
    engine = make_engine("docker")
    with nothing_left(engine):
        yield container_kwargs(engine), engine, private_dockerd


@pytest.mark.docker
def test_docker_daemon_restarted_mid_run(
    trial: int, on_private_dockerd: tuple[dict[str, Any], Engine, PrivateDockerd], tmp_path: Path
) -> None:
    """dockerd SIGKILLed mid-task and started again on the same roots: the docker client
    loses its daemon, so the job fails with the client's own rc (125); the restarted daemon
    removes the `--rm` container."""
    where, _engine, daemon = on_private_dockerd
    pdd = copy_examples(tmp_path)
    thread, runner = start_slow(pdd, where, make_ssh_key(tmp_path))
    daemon.restart()
    thread.join(LIMIT)
    assert not thread.is_alive()
    assert (runner.status, runner.rc) == ("failed", 125), runner.reason
    assert_readable(Path(runner.artifact_dir), "failed", 125)
    assert "runner_on_start" in [e["event"] for e in runner.events]  # the events so far


@pytest.mark.docker
def test_docker_daemon_gone_mid_run_names_the_engine_and_its_socket(
    on_private_dockerd: tuple[dict[str, Any], Engine, PrivateDockerd], tmp_path: Path
) -> None:
    """dockerd SIGKILLed mid-task and not started again: the job fails with a reason naming
    docker and the socket, and the next job with an EngineError naming them; once the daemon
    is back, nothing of ours is left on it."""
    where, _engine, daemon = on_private_dockerd
    pdd = copy_examples(tmp_path)
    thread, runner = start_slow(pdd, where, make_ssh_key(tmp_path))
    try:
        daemon.kill()
        thread.join(LIMIT)
        assert not thread.is_alive()
        assert (runner.status, runner.rc) == ("failed", 125)
        assert f"docker stopped answering at {daemon.host}" in runner.reason
        assert_readable(Path(runner.artifact_dir), "failed", 125)
        with pytest.raises(EngineError, match=f"docker does not answer at {daemon.host}"):
            containerrunner.run(private_data_dir=str(pdd), playbook="slow.yml", **where)
    finally:
        daemon.start()


def _labelled(client: list[str], label: str) -> list[str]:
    out = subprocess.run(
        [*client, "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.split()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.append(int(entry))
    return found


@pytest.mark.docker
def test_a_dead_owners_container_is_reaped_on_the_endpoint_it_used(
    private_dockerd: PrivateDockerd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner ran its job on a private dockerd (DOCKER_HOST in its environment only) and
    was SIGKILLed; the next job of a process whose DOCKER_HOST is the shared daemon's reaps
    the container on the private daemon (the owner record's endpoint), and asks the shared
    daemon about nothing of the owner's."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # this process: the shared daemon
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "slow.yml").write_text(SLOW)
    key = tmp_path / "key-text"
    key.write_text(make_ssh_key(tmp_path))
    where = container_kwargs(make_engine("docker"))
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, repr(where), str(pdd), str(key)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "DOCKER_HOST": private_dockerd.host},
    )  # fmt: skip
    assert owner.stdout is not None
    assert owner.stdout.readline().startswith("up"), "the owner's job did not start"
    owned = f"containerrunner.owner-pid={owner.pid}"
    private, shared = private_dockerd.client(), ["docker"]
    assert len(_labelled(private, owned)) == 1, "the owner's container is not on its daemon"
    assert _labelled(shared, owned) == []
    # The owner's docker client dies with it (its process group killed, as an OOM kill of its
    # cgroup would): a living client would forward the reaper's SIGTERM to the container
    # through the private daemon itself, whatever endpoint the reaper used.
    clients = [pid for pid in _children(owner.pid) if b"docker" in _cmdline(pid)]
    assert clients, "the owner's docker client is not its child"
    # from before the owner's death: any process of this user that starts a job reaps dead
    # owners, so another one's reaper may act before run_command below does
    since = subprocess.run(
        ["date", "+%s.%N"], capture_output=True, text=True, check=True
    ).stdout.strip()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    for pid in clients:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    containerrunner.run_command("true", [], host_cwd=str(tmp_path))  # any job reaps
    until = subprocess.run(
        ["date", "+%s.%N"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert _labelled(private, owned) == [], "the dead owner's container is left on its daemon"
    assert not [p for p in ours_in_tempdir() if (o := read_owner(p)) and o.pid == owner.pid]

    def actions(client: list[str]) -> list[str]:
        return subprocess.run(
            [*client, "events", "--since", since, "--until", until, "--filter", f"label={owned}",
             "--format", "{{.Action}}"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.split()  # fmt: skip

    # the reaper's own kill through the private daemon's API, not only the container's end
    # once the reaper had stopped the owner's processes in it (their environment names the
    # runtime dir: that alone ends the `--rm` container, without a `kill` event)
    assert "kill" in actions(private), actions(private)
    assert actions(shared) == [], "the shared daemon saw the owner's container"
