"""Owned temp dirs and the reaper of what dead owners left (tempdirs.py); no containers."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from containerrunner import tempdirs
from containerrunner.procinfo import process_alive, start_time
from containerrunner.tempdirs import OWNER_FILE, Owner


@pytest.fixture
def tmpdir_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tempfile.gettempdir() pointed at a fresh dir for the test."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root


def dead_owner() -> Owner:
    """The owner record of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(proc.pid)
    proc.wait()
    return dataclasses.replace(Owner.current(), pid=proc.pid, started=started)


def test_make_dir_is_private_and_records_its_owner(tmpdir_root: Path) -> None:
    path = tempdirs.make_dir(tempdirs.runtime_dir_path("abc/../defghijk"))
    assert Path(path).parent == tmpdir_root
    assert Path(path).name.startswith("containerrunner-abc_.._d-")
    assert os.stat(path).st_mode & 0o777 == 0o700
    owner = tempdirs.read_owner(path)
    assert owner is not None and owner.pid == os.getpid() and not owner.gone


def test_make_dir_never_reuses_an_existing_path(tmpdir_root: Path) -> None:
    path = tempdirs.runtime_dir_path("x")
    os.mkdir(path)
    with pytest.raises(FileExistsError):
        tempdirs.make_dir(path)
    assert os.path.isdir(path)  # what someone else made is left alone


def test_start_time_tells_a_reused_pid_apart() -> None:
    me = os.getpid()
    assert process_alive(me, start_time(me))
    assert not process_alive(me, (start_time(me) or 0) + 1)


def test_reap_removes_only_what_dead_owners_left(tmpdir_root: Path) -> None:
    mine = tempdirs.make_dir(tempdirs.runtime_dir_path("live"))
    left = tempdirs.make_dir(tempdirs.runtime_dir_path("dead"), owner=dead_owner())
    Path(left, "events.fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(Path(left, "events.fifo"))
    unknown = tmpdir_root / "containerrunner-no-owner"
    unknown.mkdir()
    elsewhere = dataclasses.replace(dead_owner(), host="another-host")
    remote = tempdirs.make_dir(tempdirs.runtime_dir_path("remote"), owner=elsewhere)
    other_prefix = tmpdir_root / "something-else"
    other_prefix.mkdir()

    assert tempdirs.reap_stale() == [left]
    assert not os.path.exists(left)
    for kept in (mine, unknown, remote, other_prefix):
        assert os.path.isdir(kept), kept


def test_reap_stops_a_dead_owners_host_job_processes(tmpdir_root: Path) -> None:
    """A host job's processes (ansible-playbook, its workers, their children, in sessions of
    their own) outlive a SIGKILLed owner: the reap stops every process whose environment names
    the dead owner's runtime dir, and leaves a live owner's job alone."""
    left = tempdirs.make_dir(tempdirs.runtime_dir_path("dead"), owner=dead_owner())
    mine = tempdirs.make_dir(tempdirs.runtime_dir_path("live"))
    script = "import subprocess, sys; print(subprocess.Popen(['sleep', '600']).pid, flush=True); "
    script += "subprocess.run(['sleep', '600'])"
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "CONTAINERRUNNER_EVENT_FIFO": f"{where}/events.fifo"},
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        for where in (left, mine)
    ]  # fmt: skip
    try:
        assert jobs[0].stdout is not None
        child = int(jobs[0].stdout.readline())  # a child in the job's own session
        assert tempdirs.reap_stale() == [left]
        assert jobs[0].wait(timeout=30) < 0  # ended by a signal, not by itself
        assert not process_alive(child, None), "the dead owner's job's child still runs"
        assert jobs[1].poll() is None and os.path.isdir(mine)
    finally:
        for job in jobs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, 9)
            job.wait()


def test_owner_record_that_is_not_a_regular_file_is_never_opened(tmpdir_root: Path) -> None:
    planted = tmpdir_root / "containerrunner-planted"
    planted.mkdir()
    os.mkfifo(planted / OWNER_FILE)  # an open() of it would block for good
    done = threading.Event()

    def look() -> None:
        assert tempdirs.read_owner(planted) is None
        assert tempdirs.reap_stale() == []
        done.set()

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(30)
    assert done.is_set(), "reading a FIFO owner record blocked"
    assert planted.is_dir()


def test_links_and_other_users_dirs_are_not_ours(tmpdir_root: Path) -> None:
    target = tmpdir_root / "elsewhere"
    target.mkdir()
    (tmpdir_root / "containerrunner-link").symlink_to(target)
    (tmpdir_root / "containerrunner-file").write_text("")
    assert tempdirs.ours_in_tempdir() == []


def test_terminate_kills_what_appears_after_the_first_look(tmp_path: Path) -> None:
    """A process that `find` names only on its second look (an ssh-agent whose lasting child
    was forked after its parent was listed) is SIGKILLed; the first look's gets SIGTERM."""
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    looks: list[list[int]] = [[first.pid], [late.pid]]
    try:
        tempdirs._terminate(lambda: looks.pop(0) if looks else [], "test", str(tmp_path))
        assert first.wait(timeout=30) == -15
        assert late.wait(timeout=30) == -9
    finally:
        for proc in (first, late):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_ansible_module_dirs_are_the_real_dirs_an_argv_names(tmp_path: Path) -> None:
    module_dir = tmp_path / ".ansible" / "tmp" / "ansible-tmp-1796231570.32-11872-6841"
    module_dir.mkdir(parents=True)
    (tmp_path / "ansible-tmp-link").symlink_to(module_dir)
    module = f"{module_dir}/AnsiballZ_command.py"
    assert tempdirs.ansible_module_dirs([sys.executable, module]) == [str(module_dir)]
    wrapper = ["/bin/sh", "-c", f"/usr/bin/python3 {module} && sleep 0"]  # not one path
    assert tempdirs.ansible_module_dirs(wrapper) == []
    others = [
        f"{tmp_path}/ansible-tmp-link/AnsiballZ_command.py",  # a link
        f"{tmp_path}/ansible-tmp-gone/AnsiballZ_command.py",  # no such dir
        f"{tmp_path}/.ansible/AnsiballZ_command.py",  # not an ansible-tmp-* dir
        "ansible-tmp-1/AnsiballZ_x.py",  # relative
        f"{module_dir}/other.py",
    ]
    assert tempdirs.ansible_module_dirs(others) == []


def test_stopping_a_jobs_processes_removes_their_module_dirs(tmp_path: Path) -> None:
    """A process whose environment names the runtime dir and whose argv names a module in an
    Ansible remote temp dir (a local module stopped mid-task): stopped, its dir removed."""
    runtime = tmp_path / "containerrunner-job-123"
    runtime.mkdir()
    module_dir = tmp_path / "home" / ".ansible" / "tmp" / "ansible-tmp-1-2-3"
    module_dir.mkdir(parents=True)
    module = module_dir / "AnsiballZ_command.py"
    module.write_text("import time\ntime.sleep(600)\n")
    other_dir = tmp_path / "home" / ".ansible" / "tmp" / "ansible-tmp-4-5-6"  # not the job's
    other_dir.mkdir()
    env = {**os.environ, "TMPDIR": f"{runtime}/tmp"}
    proc = subprocess.Popen([sys.executable, str(module)], env=env)
    try:
        tempdirs.stop_job_processes(str(runtime))
        assert proc.wait(timeout=30) == -15
        assert not module_dir.exists() and other_dir.is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("recorded", "seen"),
    [("unix:///owners/docker.sock", "unix:///owners/docker.sock"), ("", "unset")],
)
def test_a_dead_owners_container_is_removed_on_the_endpoint_it_used(
    tmpdir_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: str, seen: str
) -> None:
    """The reaper asks the engine where the dead owner's job ran (its DOCKER_HOST, or none),
    not where this process's environment points."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///this/process/docker.sock")
    owner = dataclasses.replace(
        dead_owner(), container="containerrunner_job", engine="docker",
        engine_executable=str(tmp_path / "fake-docker"), engine_endpoint=recorded,
    )  # fmt: skip
    log = tmp_path / "engine.log"
    script = tmp_path / "fake-docker"
    script.write_text(f'#!/bin/sh\necho "${{DOCKER_HOST:-unset}} $*" >> "{log}"\n')
    script.chmod(0o755)
    path = tempdirs.make_dir(tempdirs.runtime_dir_path("job"), owner=owner)
    assert tempdirs.reap_stale() == [path]
    calls = log.read_text().splitlines()
    assert calls and all(line.startswith(f"{seen} ps ") for line in calls), calls


def start_worker(env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A stand-in for an Ansible worker with `env` in `cwd`, running until its stdin closes;
    returned once it has exec'd (its /proc environ and cwd are its own, not its parent's)."""
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=cwd,
    )  # fmt: skip
    assert worker.stdout is not None and worker.stdout.readline() == b"ready\n"
    return worker


@pytest.mark.parametrize("remote_tmp", [None, "custom"])
def test_a_workers_remote_tmp_dirs_are_found_by_the_pid_in_their_name(
    tmp_path: Path, remote_tmp: str | None
) -> None:
    """The local connection's `ansible-tmp-<time>-<pid>-<random>` of a live process, in its
    ANSIBLE_REMOTE_TMP or its HOME's ~/.ansible/tmp: its own only, never a link."""
    home = tmp_path / "home"
    base = tmp_path / "custom" if remote_tmp else home / ".ansible" / "tmp"
    base.mkdir(parents=True)
    env = {**os.environ, "HOME": str(home)}
    if remote_tmp:
        env["ANSIBLE_REMOTE_TMP"] = str(base)
    worker = start_worker(env)
    try:
        mine = base / f"ansible-tmp-1796243902.87-{worker.pid}-98634528885176"
        mine.mkdir()
        (base / f"ansible-tmp-1796243902.87-{worker.pid + 1}-1").mkdir()  # another worker's
        (base / f"ansible-tmp-1796243902.87-{worker.pid}-2").symlink_to(tmp_path)  # a link
        (base / f"ansible-local-{worker.pid}abc").mkdir()  # not a remote temp dir
        assert tempdirs.ansible_tmp_dirs_made_by(worker.pid) == [str(mine)]
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    assert tempdirs.ansible_tmp_dirs_made_by(worker.pid) == []  # gone: its environment too


@pytest.mark.parametrize("where", ["cwd", "ANSIBLE_CONFIG file", "ANSIBLE_CONFIG dir", "home"])
def test_a_remote_tmp_set_only_in_ansible_cfg_is_where_the_dirs_are_found(
    tmp_path: Path, where: str
) -> None:
    """`remote_tmp` in the ansible.cfg the worker reads (ANSIBLE_CONFIG, its working dir's,
    ~/.ansible.cfg: Ansible's order), quoted and with a comment as Ansible allows."""
    home, work, conf = tmp_path / "home", tmp_path / "work", tmp_path / "conf"
    for directory in (home, work, conf):
        directory.mkdir()
    base = tmp_path / "from cfg"
    base.mkdir()
    text = f'[defaults]\nremote_tmp = "{base}" ; a comment\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["HOME"] = str(home)
    if where == "cwd":
        (work / "ansible.cfg").write_text(text)
    elif where == "ANSIBLE_CONFIG file":
        (conf / "my.cfg").write_text(text)
        env["ANSIBLE_CONFIG"] = "../conf/my.cfg"  # relative to the worker's working dir
    elif where == "ANSIBLE_CONFIG dir":
        (conf / "ansible.cfg").write_text(text)
        env["ANSIBLE_CONFIG"] = "$HOME/../conf"
        (work / "ansible.cfg").write_text("[defaults]\nremote_tmp = /nowhere\n")  # loses
    else:
        (home / ".ansible.cfg").write_text(text)
    worker = start_worker(env, work)
    try:
        mine = base / f"ansible-tmp-1796243902.87-{worker.pid}-98634528885176"
        mine.mkdir()
        (home / ".ansible" / "tmp").mkdir(parents=True)
        (home / ".ansible" / "tmp" / f"ansible-tmp-1796243902.87-{worker.pid}-1").mkdir()
        assert tempdirs.configured_remote_tmp(worker.pid, tempdirs.environment(worker.pid)) == (
            str(base)
        )
        assert tempdirs.ansible_tmp_dirs_made_by(worker.pid) == [str(mine)]
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()


def test_the_environment_wins_over_ansible_cfg_and_a_world_writable_cwd_is_not_read(
    tmp_path: Path,
) -> None:
    work, from_env, from_cfg = tmp_path / "work", tmp_path / "env", tmp_path / "cfg"
    for directory in (work, from_env, from_cfg):
        directory.mkdir()
    (work / "ansible.cfg").write_text(f"[defaults]\nremote_tmp = {from_cfg}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(tmp_path / "home"), ANSIBLE_REMOTE_TMP=str(from_env))
    worker = start_worker(env, work)
    try:
        for base in (from_env, from_cfg):
            (base / f"ansible-tmp-1796243902.87-{worker.pid}-1").mkdir()
        assert tempdirs.ansible_tmp_dirs_made_by(worker.pid) == [
            str(from_env / f"ansible-tmp-1796243902.87-{worker.pid}-1")
        ]
        assert tempdirs.configured_remote_tmp(worker.pid, env) == str(from_cfg)
        work.chmod(0o777)
        assert tempdirs.configured_remote_tmp(worker.pid, env) is None  # Ansible skips it too
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
