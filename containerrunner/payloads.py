"""The AnsiballZ payload dirs of a host job's Ansible modules.

Ansible's module wrapper (AnsiballZ, run by the local connection's Python) unpacks each module
into `ansible_<module>_payload_<random>`, a dir it makes with `tempfile.mkdtemp()` in its own
temp dir (TMPDIR, TEMP, TMP, else /tmp...), and removes it when the module ends. A wrapper
stopped by a signal (a cancel, a timeout, a kill of the job) never removes it. A host job's
temp dir is its runtime dir's (`Workspace.temp_env`), gone with it; but a TMPDIR the caller set
in the job's envvars is the caller's, where such a dir would stay.

No process names its payload dir (not in its argv, environment, open files or maps), so a dir
is told to be a job's by when it was made: a wrapper makes its dir right after it starts, so
the maker of a payload dir is the Python process with that temp dir that started last before
the dir was made (its mtime: the wrapper writes the module's zip into it at once). Every live
Python process of this user counts, not only the job's: a dir whose likely maker is another
process (another job's module, in the same temp dir) is never taken.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection

from containerrunner.procinfo import command_line, environment, own_processes, started_at

PAYLOAD_PREFIX = "ansible_"
PAYLOAD_MARK = "_payload_"
# a maker's start is known to a clock tick (10 ms), the boot time to /proc/uptime's 10 ms, a
# dir's mtime to the kernel's coarse clock: a start up to this much after a dir's mtime may
# still be its maker's
_CLOCK_SLACK = 0.02


def payload_dirs_of(pids: Collection[int]) -> set[str]:
    """The payload dirs that the Python processes among `pids` (alive now) made, by the rule
    in the module docstring; only real dirs of this user."""
    makers = _python_makers(pids)
    if not makers:
        return set()
    temp_dirs = {temp_dir for temp_dir, _started in makers.values()}
    others = _python_makers([pid for pid in own_processes() if pid not in makers], temp_dirs)
    found: set[str] = set()
    for temp_dir in temp_dirs:
        candidates = {
            pid: started for pid, (where, started) in {**others, **makers}.items()
            if where == temp_dir
        }  # fmt: skip
        for path, made in _payload_dirs_in(temp_dir):
            before = [
                (started, pid)
                for pid, started in candidates.items()
                if started <= made + _CLOCK_SLACK
            ]
            if before and max(before)[1] in makers:
                found.add(path)
    return found


def _python_makers(
    pids: Collection[int], only_in: Collection[str] | None = None
) -> dict[int, tuple[str, float]]:
    """{pid: (its temp dir, when it started)} for the Python processes among `pids` (their
    temp dir in `only_in`, when given)."""
    found = {}
    for pid in pids:
        if not _is_python(pid):
            continue
        temp_dir = python_temp_dir(pid)
        started = started_at(pid)
        if temp_dir is None or started is None:
            continue
        if only_in is None or temp_dir in only_in:
            found[pid] = (temp_dir, started)
    return found


def _is_python(pid: int) -> bool:
    argv = command_line(pid)
    names = [os.path.basename(argv[0])] if argv else []
    with contextlib.suppress(OSError):
        names.append(os.path.basename(os.readlink(f"/proc/{pid}/exe")))
    return any(name.startswith("python") for name in names)


def python_temp_dir(pid: int) -> str | None:
    """The dir where `tempfile.mkdtemp()` in Python process `pid` makes its dirs, found as
    `tempfile.gettempdir()` finds it: TMPDIR, TEMP, TMP (relative ones from its working dir),
    /tmp, /var/tmp, /usr/tmp, its working dir; the first that is a dir it can write in (this
    user's access). None when `pid` cannot be read."""
    env = environment(pid)
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    if not env:
        return None
    names = [env[name] for name in ("TMPDIR", "TEMP", "TMP") if env.get(name)]
    for candidate in [*names, "/tmp", "/var/tmp", "/usr/tmp", cwd]:
        path = os.path.normpath(os.path.join(cwd, candidate))
        if os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK):
            return path
    return None


def _payload_dirs_in(temp_dir: str) -> list[tuple[str, float]]:
    """(path, mtime) of the payload dirs of this user in `temp_dir`."""
    found: list[tuple[str, float]] = []
    try:
        entries = list(os.scandir(temp_dir))
    except OSError:
        return found
    for entry in entries:
        if not (entry.name.startswith(PAYLOAD_PREFIX) and PAYLOAD_MARK in entry.name):
            continue
        with contextlib.suppress(OSError):
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                found.append((entry.path, info.st_mtime))
    return found
