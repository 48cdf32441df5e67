"""Facts about processes on this host."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Iterable, Iterator


def host_name() -> str:
    """This host's name as `socket.gethostname()` gives it on Linux (the kernel's nodename),
    without importing socket on a job's start path."""
    return os.uname().nodename


def _proc_stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()
    except OSError:
        return None


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc/<pid>/stat ('Z' for a zombie), None without /proc."""
    fields = _proc_stat_fields(pid)
    return fields[0] if fields else None


def start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (None where /proc cannot say).

    With the pid, it names one process for good: a later process that reuses the pid has
    another start time.
    """
    fields = _proc_stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat; 3 is fields[0]
    except (IndexError, ValueError):
        return None


def started_at(pid: int) -> float | None:
    """When process `pid` started, in seconds since the epoch (to about 10 ms: the clock
    tick; None where /proc cannot say)."""
    ticks = start_time(pid)
    if ticks is None:
        return None
    try:
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def own_processes() -> list[int]:
    """Pids of this user's live processes (this one too); empty without /proc."""
    return [pid for pid, _stat in _own_proc_file("stat") if _proc_state(pid) != "Z"]


def descendants(pid: int) -> list[int]:
    """`pid` and this user's live processes that descend from it (children, their children:
    by parent pid, whatever session or group they moved to); empty without /proc."""
    children: dict[int, list[int]] = {}
    for child, raw in _own_proc_file("stat"):
        fields = raw.decode("ascii", errors="replace").rpartition(")")[2].split()
        if len(fields) > 1 and fields[0] != "Z" and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        todo.extend(c for c in children.get(parent, []) if c not in found)
    return found


def pid_alive(pid: int) -> bool:
    """True when process `pid` exists (it may belong to another user) and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) != "Z"


def process_alive(pid: int, started: int | None) -> bool:
    """True when the process that had pid `pid` and start time `started` still runs.

    `started` None (unknown) trusts the pid alone.
    """
    if not pid_alive(pid):
        return False
    return started is None or start_time(pid) in (None, started)


def _own_proc_file(name: str) -> Iterator[tuple[int, bytes]]:
    """(pid, contents of /proc/<pid>/<name>) for each process of this user that can be read;
    nothing without /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != os.getuid():
                continue
            with open(f"/proc/{entry}/{name}", "rb") as fh:
                yield int(entry), fh.read()
        except OSError:
            continue


def processes_using(path: str, program: str) -> list[int]:
    """Pids of this user's `program` processes (by argv[0]'s name) with an argument under
    `path` (a dir); empty without /proc."""
    prefix = path.rstrip("/") + "/"
    found: list[int] = []
    for pid, cmdline in _own_proc_file("cmdline"):
        argv = cmdline.split(b"\0")
        if not argv or os.path.basename(argv[0].decode(errors="replace")) != program:
            continue
        if any(arg.decode(errors="replace").startswith(prefix) for arg in argv[1:]):
            found.append(pid)
    return found


def command_line(pid: int) -> list[str]:
    """The argv of process `pid` (empty when it cannot be read: gone, another user's, no
    /proc)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [arg.decode(errors="surrogateescape") for arg in raw.split(b"\0")[:-1]]


def environment(pid: int) -> dict[str, str]:
    """The environment of process `pid` (empty when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return {}
    pairs = (item.decode(errors="surrogateescape").partition("=") for item in raw.split(b"\0"))
    return {name: value for name, sep, value in pairs if sep}


def processes_mentioning(text: str) -> list[int]:
    """Pids of this user's live processes (not this one) whose environment holds `text`;
    empty without /proc."""
    needle, me = text.encode(), os.getpid()
    return [
        pid
        for pid, environ in _own_proc_file("environ")
        if pid != me and needle in environ and _proc_state(pid) != "Z"
    ]


def signal_and_wait(pids: Iterable[int], sig: int, timeout: float) -> list[int]:
    """Send `sig` to each of `pids` through its pidfd (never to a process that took a pid
    over since) and wait up to `timeout` seconds in all for them to exit (their pidfds turn
    readable: no polling). Returns those still running then; a pid gone before the signal,
    or one this user may not signal, is not among them."""
    pidfds: dict[int, int] = {}
    try:
        for pid in pids:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # gone already
                continue
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except PermissionError:
                os.close(pidfd)
                continue
            except ProcessLookupError:  # exited since: its pidfd is readable
                pass
            pidfds[pid] = pidfd
        deadline = time.monotonic() + timeout
        return [
            pid
            for pid, pidfd in pidfds.items()
            if not select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))[0]
        ]
    finally:
        for pidfd in pidfds.values():
            with contextlib.suppress(OSError):
                os.close(pidfd)
