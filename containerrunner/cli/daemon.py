"""Daemonising a job (`start`), and finding and stopping it again (`stop`, `is-alive`).

Like ansible-runner, the daemon's pid is in PRIVATE_DATA_DIR/pid while it runs and its stderr
goes to PRIVATE_DATA_DIR/daemon.log. `start` double-forks (the middle process calls setsid and
exits, so the daemon has no controlling terminal and is not our child) and waits on a pipe
until the daemon says the job has started, or why it could not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable

from containerrunner.cli.args import UsageError
from containerrunner.cli.common import CliError
from containerrunner.errors import ContainerRunnerError, EngineError
from containerrunner.procinfo import pid_alive

PIDFILE = "pid"
DAEMON_LOG = "daemon.log"
STOP_TIMEOUT = 30.0
KILL_TIMEOUT = 5.0
POLL = 0.1

Report = Callable[[str], None]
Job = Callable[[Report], int]
#: a message the job sends before it has started (e.g. a pull's steps, one JSON item each):
#: `report(PROGRESS + " " + text)`, given to spawn's `on_progress` as `text`; any number
PROGRESS = "progress"


def pidfile_path(private_data_dir: str) -> str:
    return os.path.join(private_data_dir, PIDFILE)


def read_pid(private_data_dir: str) -> int | None:
    try:
        with open(pidfile_path(private_data_dir), encoding="ascii") as fh:
            return int(fh.readline().strip())
    except (OSError, ValueError):
        return None


def _is_ours(pid: int) -> bool:
    """Whether `pid` looks like a containerrunner process (guards against a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"containerrunner" in fh.read()
    except OSError:
        return True  # no /proc: trust the pidfile, as ansible-runner does


def is_alive(private_data_dir: str) -> bool:
    pid = read_pid(private_data_dir)
    return pid is not None and pid_alive(pid)


def _remove_pidfile(private_data_dir: str, pid: int) -> None:
    if read_pid(private_data_dir) == pid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pidfile_path(private_data_dir))


# ---------------------------------------------------------------------------- start
def start(private_data_dir: str, job: Job) -> int:
    """Run `job` in a daemon; returns the daemon's pid once the job has started.

    `job(report)` runs in the daemon and must call `report("started")` when the job runs;
    an exception it raises before that is reported here as a CliError.
    """
    pid = read_pid(private_data_dir)
    if pid is not None:
        if pid_alive(pid) and _is_ours(pid):
            raise CliError(
                f"a job is already running for {private_data_dir} (pid {pid}); "
                f"stop it with `containerrunner stop {private_data_dir}`"
            )
        _remove_pidfile(private_data_dir, pid)
    return spawn(
        job,
        log_path=os.path.join(private_data_dir, DAEMON_LOG),
        pidfile=pidfile_path(private_data_dir),
    )


def spawn(
    job: Job,
    *,
    log_path: str | None,
    pidfile: str | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> int:
    """Run `job` in a daemon (stderr to `log_path`, or nowhere; its pid in `pidfile` while it
    runs, when given); returns the daemon's pid once `job` has called `report("started")`.
    Each `report("progress TEXT")` before that goes to `on_progress(TEXT)` as it arrives.

    An exception `job` raises before that is reported here as a CliError.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        os.close(read_end)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        _daemon(job, write_end, log_path, pidfile)
    os.close(write_end)
    os.waitpid(child, 0)
    message = ""
    with os.fdopen(read_end, "rb") as pipe:
        for raw in pipe:  # each line as it arrives, until the final one (or EOF)
            line = raw.decode("utf-8", "replace").strip()
            status, _, detail = line.partition(" ")
            if status != PROGRESS:
                message = line
                break
            if on_progress is not None:
                on_progress(detail)
    status, _, detail = message.partition(" ")
    if status == "started":
        return int(detail)
    if status == "error":
        raise CliError(detail)
    where = f"; see {log_path}" if log_path else ""
    raise CliError(f"the daemon ended before the job started{where}")


def _daemon(
    job: Job, write_end: int, log_path: str | None, pidfile: str | None
) -> None:  # pragma: no cover
    """The daemon process: stdio redirected, pidfile held, `job` run; never returns."""
    reported = False

    def report(message: str) -> None:
        nonlocal reported
        if reported:
            return
        if message.startswith(PROGRESS + " "):  # one line (a write below PIPE_BUF is whole)
            with contextlib.suppress(OSError):  # the caller is gone: the job goes on
                os.write(write_end, " ".join(message.split("\n")).encode("utf-8") + b"\n")
            return
        reported = True
        text = message if message != "started" else f"started {os.getpid()}"
        with contextlib.suppress(OSError):
            os.write(write_end, " ".join(text.split()).encode("utf-8") + b"\n")
            os.close(write_end)

    code = 1
    have_pidfile = False
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        log = (
            os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if log_path
            else os.dup(devnull)
        )
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(log, 2)
        os.close(devnull)
        os.close(log)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if pidfile is not None:
            try:
                fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                where = os.path.dirname(pidfile)
                report(f"error a job is already running for {where} (pidfile exists)")
                os._exit(1)
            have_pidfile = True
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            os.close(fd)
        code = job(report)
        report("started")
    except (ContainerRunnerError, UsageError, CliError) as exc:
        sys.stderr.write(f"containerrunner: error: {exc}\n")
        report(f"error {exc}")
    except BaseException as exc:
        traceback.print_exc()
        report(f"error {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
            if have_pidfile and pidfile is not None:
                _remove_pidfile(os.path.dirname(pidfile), os.getpid())
        os._exit(code)


# ---------------------------------------------------------------------------- stop
def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def remove_job_containers(pid: int, ident: str | None) -> list[str]:
    """Remove the containers, in every engine that answers, owned by `pid` or of `ident`."""
    from containerrunner.isolation.engine import ENGINE_NAMES, detect_engine
    from containerrunner.isolation.reaper import list_ours, remove_container

    removed: list[str] = []
    for name in ENGINE_NAMES:
        try:
            engine = detect_engine(name)
            containers = list_ours(engine)
        except EngineError:
            continue
        for container in containers:
            if container["owner_pid"] == pid or (ident and container["ident"] == ident):
                remove_container(engine, container["name"])
                removed.append(container["name"])
    return removed


def stop(private_data_dir: str, ident: str | None = None) -> bool:
    """Stop the daemon of `private_data_dir` and remove its containers.

    SIGTERM makes the daemon cancel the job (the Runner stops and removes the container); a
    daemon still alive after STOP_TIMEOUT gets SIGKILL. Containers the daemon owned, or
    labelled with `ident`, are removed afterwards in any case. True when a daemon was running.
    """
    pid = read_pid(private_data_dir)
    if pid is None:
        return False
    running = pid_alive(pid) and _is_ours(pid)
    if running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, KILL_TIMEOUT)
    remove_job_containers(pid, ident)
    _remove_pidfile(private_data_dir, pid)
    return running
