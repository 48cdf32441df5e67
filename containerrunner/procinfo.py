"""Facts about processes on this host."""

from __future__ import annotations

import os


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc/<pid>/stat ('Z' for a zombie), None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True when process `pid` exists (it may belong to another user) and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) != "Z"
