"""The temporary directories containerrunner makes, each marked with its owner.

Two kinds live in the temp dir (`tempfile.gettempdir()`, so `TMPDIR` moves them), both named
`containerrunner-*`:

- a job's runtime dir (generated inventory and extravars, the event FIFO, the ssh-agent
  socket): made when the job starts, removed when it ends, on every path;
- a temporary private data dir, made by a helper called without `private_data_dir`: removed
  when its job ends (the Runner keeps what callers read of it in memory).

Each holds `OWNER_FILE`, a JSON record of the process that made it (pid, its start time, the
host) and, for a runtime dir, the container of its job. A process killed with SIGKILL cannot
clean up; the next job of any containerrunner process on the host calls `reap_stale()` (in a
thread of its own that the job's start does not wait for and its end joins), which removes
every dir whose owner is gone, and that owner's container with it. A dir without a
readable owner record (made by something else, or still being made) is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from containerrunner.errors import ContainerRunnerError
from containerrunner.procinfo import (
    command_line,
    environment,
    host_name,
    process_alive,
    processes_mentioning,
    processes_using,
    signal_and_wait,
    start_time,
)
from containerrunner.sshagent import AGENT_EXIT_TIMEOUT

log = logging.getLogger(__name__)

PREFIX = "containerrunner-"
NEW_PREFIX = ".containerrunner-new-"  # a dir being made (see make_dir)
# A private engine API service's dir (its socket; isolation/podman_service.py): not a job's,
# so not among `ours_in_tempdir()`; `reap_stale()` stops the service of a dead owner.
SERVICE_PREFIX = "containerrunner.service-"
OWNER_FILE = ".containerrunner-owner"
_OWNER_MAX_BYTES = 4096


@dataclass(frozen=True)
class Owner:
    """The process that made a dir, and the container its job runs in (if any)."""

    pid: int
    started: int | None
    host: str
    container: str | None = None
    engine: str | None = None  # the engine's name (podman, docker)
    engine_executable: str | None = None
    # the engine's endpoint variable (DOCKER_HOST, CONTAINER_HOST) as the owner had it ("":
    # unset); None in records written before it was kept
    engine_endpoint: str | None = None

    @classmethod
    def current(
        cls,
        container: str | None = None,
        engine: str | None = None,
        executable: str | None = None,
        endpoint: str | None = None,
    ) -> Owner:
        pid = os.getpid()
        host = host_name()
        return cls(pid, start_time(pid), host, container, engine, executable, endpoint)

    @property
    def gone(self) -> bool:
        """The owner ran on this host and no longer runs."""
        return self.host == host_name() and not process_alive(self.pid, self.started)


def fresh_path(label: str, parent: str | None = None) -> str:
    """A new path `<tempdir>/containerrunner-<label>-<random>`, not made yet (`make_dir` does);
    under `parent` instead of the temp dir when given (a warm session's runtime dir).

    The random part makes it unguessable; `make_dir` refuses a path that exists.
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return os.path.join(parent or tempfile.gettempdir(), f"{PREFIX}{safe}-{os.urandom(6).hex()}")


def service_dir_path(label: str) -> str:
    """A fresh path `<tempdir>/containerrunner.service-<label>-<random>` for a private engine
    API service (see SERVICE_PREFIX)."""
    return os.path.join(tempfile.gettempdir(), f"{SERVICE_PREFIX}{label}-{os.urandom(6).hex()}")


def runtime_dir_path(ident: str, parent: str | None = None) -> str:
    """A fresh path for the runtime dir of job `ident`."""
    return fresh_path(ident[:8], parent)


def temporary_data_dir_path(parent: str | None = None) -> str:
    """A fresh path for a temporary private data dir (the caller gave none)."""
    return fresh_path("data", parent)


def make_dir(path: str, owner: Owner | None = None) -> str:
    """Make the private dir (0700) `path`, with its owner record inside; returns `path`.

    An existing `path` is an error (FileExistsError), never reused.
    """
    # Made under a hidden name, then renamed into place with its owner record inside: no
    # scan ever sees it without one.
    new = tempfile.mkdtemp(prefix=NEW_PREFIX, dir=os.path.dirname(path))
    try:
        write_owner(new, owner or Owner.current())
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "exists already", path)
        os.rename(new, path)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return path


def write_owner(directory: str | os.PathLike[str], owner: Owner) -> None:
    """Write `directory`'s owner record; FileExistsError when it has one already."""
    record = os.path.join(directory, OWNER_FILE)
    fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(owner)))


def remove_dir(path: str) -> None:
    """Remove a dir made by `make_dir` and all in it; a dir already gone is fine."""
    shutil.rmtree(path, ignore_errors=True)


def read_owner(path: str | os.PathLike[str]) -> Owner | None:
    """The owner record of dir `path`, or None when there is no readable one.

    Only a regular file is opened (never a FIFO, socket or device someone put there).
    """
    record = os.path.join(path, OWNER_FILE)
    try:
        fd = os.open(record, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = json.loads(os.read(fd, _OWNER_MAX_BYTES).decode("utf-8"))
        return Owner(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None
    finally:
        os.close(fd)


def ours_in_tempdir(tmp: str | None = None) -> list[str]:
    """The `containerrunner-*` dirs (and ones being made) of this user in the temp dir."""
    return _own_dirs(tmp, (PREFIX, NEW_PREFIX))


def services_in_tempdir(tmp: str | None = None) -> list[str]:
    """The private engine API services' dirs of this user in the temp dir."""
    return _own_dirs(tmp, (SERVICE_PREFIX,))


def _own_dirs(tmp: str | None, prefixes: tuple[str, ...]) -> list[str]:
    root = tmp or tempfile.gettempdir()
    found: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return found
    uid = os.getuid()
    for entry in entries:
        if not entry.name.startswith(prefixes):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
            found.append(entry.path)
    return sorted(found)


def reap_stale(tmp: str | None = None) -> list[str]:
    """Remove what dead owners left in the temp dir (their containers too); the paths removed."""
    removed: list[str] = []
    for path in ours_in_tempdir(tmp):
        owner = read_owner(path)
        if owner is None or not owner.gone:
            continue
        if owner.container and owner.engine:
            _remove_container(owner)
        stop_job_processes(path)
        _stop_agents(path)
        remove_dir(path)
        removed.append(path)
        log.info("removed %s, left by process %d", path, owner.pid)
    for path in services_in_tempdir(tmp):
        owner = read_owner(path)
        if owner is None or not owner.gone:
            continue
        # the service's environment names its dir (podman_service.SERVICE_DIR_VARIABLE)
        stop_job_processes(path)
        remove_dir(path)
        removed.append(path)
        log.info("stopped the engine API service in %s, left by process %d", path, owner.pid)
    return removed


def reap_stale_meanwhile() -> threading.Thread:
    """`reap_stale()` in a thread of its own, returned started: a job starts without waiting
    for it and joins it when it ends, so "the next job removes what a dead owner left" still
    holds once that job has ended. A failure is logged, never raised."""

    def reap() -> None:
        try:
            reap_stale()
        except Exception:
            log.warning("removing what dead owners left failed", exc_info=True)

    thread = threading.Thread(target=reap, name="containerrunner-reaper", daemon=True)
    thread.start()
    return thread


def stop_job_processes(path: str, module_dirs: Iterable[str] = ()) -> None:
    """The processes of a dead owner's host job that still run: every process of this user
    whose environment names the runtime dir (its temp dir and event FIFO are there, and its
    children inherit that). A host job's ansible-playbook and its workers outlive a SIGKILLed
    owner (they run in sessions of their own). Also called when a host job was stopped: a
    module's process (e.g. `sleep`) started by an ansible worker in its own session is not in
    the job's process group.

    The Ansible remote temp dirs of the local connection's modules those processes ran
    (`~/.ansible/tmp/ansible-tmp-*`, named in a module's argv; Ansible removes each when its
    task ends, which a stopped task never does) and the AnsiballZ payload dirs their wrappers
    made in their temp dir (`payloads`: one the caller's TMPDIR in the job's envvars names,
    not the runtime dir's) are removed once the processes ended, with `module_dirs` (what
    `job_module_dirs` found before the job was stopped: a module that SIGTERM ended is gone by
    now, its dirs not)."""
    found = set(module_dirs)

    def find() -> list[int]:
        pids = _job_processes(path)
        found.update(module_dirs_of(pids))
        return pids

    _terminate(find, "processes", path)
    for module_dir in sorted(found):
        log.info("removing %s, left by a stopped module of the job in %s", module_dir, path)
        shutil.rmtree(module_dir, ignore_errors=True)


def job_module_dirs(path: str) -> set[str]:
    """The Ansible remote temp dirs and AnsiballZ payload dirs of the modules that the host
    job of runtime dir `path` runs now (see stop_job_processes)."""
    return module_dirs_of(_job_processes(path))


def _job_processes(path: str) -> list[int]:
    return processes_mentioning(path.rstrip("/") + "/")


def module_dirs_of(pids: list[int]) -> set[str]:
    """The Ansible remote temp dirs and AnsiballZ payload dirs of the modules that the
    processes `pids` run (see stop_job_processes)."""
    from containerrunner.payloads import payload_dirs_of  # the stop path's only

    return payload_dirs_of(pids) | {
        found
        for pid in pids
        for found in [*ansible_module_dirs(command_line(pid)), *ansible_tmp_dirs_made_by(pid)]
    }


def ansible_tmp_dirs_made_by(pid: int) -> list[str]:
    """The local connection's remote temp dirs (`ansible-tmp-<time>-<pid>-<random>`) that the
    Ansible worker `pid` made in its remote_tmp (ANSIBLE_REMOTE_TMP or ANSIBLE_REMOTE_TEMP in
    its environment, else `remote_tmp` in the ansible.cfg it reads, else ~/.ansible/tmp; `~`
    as its HOME or as this user's home in the password database, which the local connection
    may use): a dir made for a module that no process names yet (the module is being
    transferred) is found by its maker's pid. Only real dirs of this user. Not found: a
    remote_tmp given as the `ansible_remote_tmp` variable (inventory, play vars)."""
    env = environment(pid)
    if not env:
        return []
    remote_tmp = (
        env.get("ANSIBLE_REMOTE_TMP")
        or env.get("ANSIBLE_REMOTE_TEMP")
        or configured_remote_tmp(pid, env)
        or "~/.ansible/tmp"
    )
    homes = {env.get("HOME") or "", pwd.getpwuid(os.getuid()).pw_dir}
    if remote_tmp == "~" or remote_tmp.startswith("~/"):
        bases = {home + remote_tmp[1:] for home in homes if os.path.isabs(home)}
    else:
        bases = {remote_tmp} if os.path.isabs(remote_tmp) else set()
    found = []
    for base in sorted(bases):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            parts = name.split("-")
            if len(parts) != 5 or parts[:2] != ["ansible", "tmp"] or parts[3] != str(pid):
                continue
            directory = os.path.join(base, name)
            with contextlib.suppress(OSError):
                info = os.lstat(directory)
                if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                    found.append(directory)
    return found


def ansible_config_file(pid: int, env: dict[str, str]) -> str | None:
    """The ansible.cfg that the Ansible process `pid` (environment `env`) reads, found as
    Ansible finds it: ANSIBLE_CONFIG (a file, or a dir's ansible.cfg), the ansible.cfg in its
    working dir (unless that dir is world-writable), ~/.ansible.cfg, /etc/ansible/ansible.cfg;
    the first that is a readable file. None when there is none or `pid` cannot be read."""
    import re  # the stop path's only (tempdirs is on every job's start path)

    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir

    def expand(path: str) -> str:
        path = re.sub(
            r"\$(\w+)|\$\{(\w+)\}",
            lambda m: env.get(m.group(1) or m.group(2), m.group(0)),
            path,
        )
        if path == "~" or path.startswith("~/"):
            path = home + path[1:]
        return os.path.normpath(os.path.join(cwd, path))

    candidates = []
    if "ANSIBLE_CONFIG" in env:
        given = expand(env["ANSIBLE_CONFIG"])
        candidates.append(os.path.join(given, "ansible.cfg") if os.path.isdir(given) else given)
    with contextlib.suppress(OSError):
        if not os.stat(cwd).st_mode & stat.S_IWOTH:
            candidates.append(os.path.join(cwd, "ansible.cfg"))
    candidates += [expand("~/.ansible.cfg"), "/etc/ansible/ansible.cfg"]
    for candidate in candidates:
        if os.path.exists(candidate) and os.access(candidate, os.R_OK):
            return candidate
    return None


def configured_remote_tmp(pid: int, env: dict[str, str]) -> str | None:
    """`remote_tmp` in the [defaults] of the ansible.cfg that process `pid` reads (unquoted,
    as Ansible reads it), or None (no such file or key, or a file Ansible could not read)."""
    import configparser  # the stop path's only

    path = ansible_config_file(pid, env)
    if path is None:
        return None
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
        value = parser.get("defaults", "remote_tmp", fallback=None)
    except (OSError, UnicodeError, configparser.Error):
        return None
    if not value:
        return None
    value = value.strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value or None


def ansible_module_dirs(argv: list[str]) -> list[str]:
    """The Ansible remote temp dirs (`ansible-tmp-*`) that hold an `AnsiballZ_*` file named in
    `argv`: only real dirs of this user (never a link)."""
    found = []
    for arg in argv:
        directory, name = os.path.split(arg)
        if not (name.startswith("AnsiballZ_") and os.path.isabs(directory)):
            continue
        if not os.path.basename(directory).startswith("ansible-tmp-"):
            continue
        try:
            info = os.lstat(directory)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            found.append(directory)
    return found


def _stop_agents(path: str) -> None:
    """The ssh-agent a dead owner started for its job (its socket is in the runtime dir): the
    agent runs on its own, so it outlives a SIGKILLed owner."""
    _terminate(lambda: processes_using(path, "ssh-agent"), "ssh-agent", path)


def _terminate(find: Callable[[], list[int]], what: str, path: str) -> None:
    """SIGTERM to the processes `find()` names, up to AGENT_EXIT_TIMEOUT (sshagent's) in all
    for them to end (their pidfds, not polling: procinfo.signal_and_wait), then `find()` again
    and SIGKILL to what it names: a process that outlived its SIGTERM, or one that appeared
    after the first look (an ssh-agent still daemonizing forks its lasting child after its
    parent was listed)."""
    pids = find()
    if not pids:
        return
    log.info("stopping %s %s, left by a dead owner in %s", what, pids, path)
    signal_and_wait(pids, signal.SIGTERM, AGENT_EXIT_TIMEOUT)
    signal_and_wait(find(), signal.SIGKILL, 0.0)


def _remove_container(owner: Owner) -> None:
    from containerrunner.isolation.engine import ENGINE_NAMES, make_engine
    from containerrunner.isolation.reaper import remove_if_owned

    if owner.engine not in ENGINE_NAMES or owner.container is None:
        return
    # on the endpoint the owner used, whatever this process's environment says
    engine = make_engine(owner.engine, owner.engine_executable, owner.engine_endpoint)
    with contextlib.suppress(ContainerRunnerError):
        remove_if_owned(engine, owner.container, owner.pid)
