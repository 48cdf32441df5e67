"""What a test session left in the temp dir (tests/conftest.py's `nothing_left_in_tempdir`).

The temp dir is listed when the session starts and again when it ends; an entry that is new
at the end (a name not listed before, or the same name on another inode) is left by the
session, unless KNOWN names its owner and why it stays. That is exact only in a temp dir of
the run's own: `is_private()`, a dir nobody but its owner may write in (scripts/test gives
each pytest step one). In a shared temp dir (/tmp, where other sessions on the machine make
and remove their own entries meanwhile) a new entry cannot be told to be this session's:
those of this user made during the session are only reported (`shared_suspects`), and the
session fails on the containerrunner dirs of this run alone (their owner records say whose
they are).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

# Entries a session may leave in the temp dir: each with the owner that keeps it and why.
KNOWN: dict[str, str] = {
    "pytest-of-*": "pytest's own: the root of the tmp_path dirs, where pytest keeps the last "
    "three sessions' for a look after a failure (scripts/test removes the step's temp dir)",
}

# a file system's timestamps may lag the clock by a tick
_CLOCK_SLACK = 1.0


@dataclass(frozen=True)
class Entry:
    """One entry of the temp dir, as lstat saw it."""

    name: str
    inode: int
    uid: int
    ctime: float


def listing(root: str) -> dict[str, Entry]:
    """The entries of `root` (not followed when links); empty when it cannot be read."""
    found: dict[str, Entry] = {}
    try:
        entries = list(os.scandir(root))
    except OSError:
        return found
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:  # gone meanwhile
            continue
        found[entry.name] = Entry(entry.name, info.st_ino, info.st_uid, info.st_ctime)
    return found


def is_private(root: str) -> bool:
    """Nobody but `root`'s owner may make entries in it (no write bit for group or others)."""
    try:
        mode = os.stat(root).st_mode
    except OSError:
        return False
    return not mode & (stat.S_IWGRP | stat.S_IWOTH)


def known_reason(name: str, known: Mapping[str, str] = KNOWN) -> str | None:
    """Why the entry `name` may stay (KNOWN), None when nothing says so."""
    for pattern, reason in known.items():
        if fnmatch.fnmatchcase(name, pattern):
            return reason
    return None


def new_entries(
    before: Mapping[str, Entry], after: Mapping[str, Entry], known: Mapping[str, str] = KNOWN
) -> list[Entry]:
    """The entries of `after` that `before` did not have (by name and inode), KNOWN ones
    left out; sorted by name."""
    return sorted(
        (
            entry
            for name, entry in after.items()
            if (name not in before or before[name].inode != entry.inode)
            and known_reason(name, known) is None
        ),
        key=lambda entry: entry.name,
    )


def shared_suspects(entries: list[Entry], since: float, uid: int | None = None) -> list[Entry]:
    """Of new entries in a shared temp dir, those that this session may have made: of this
    user (`uid`), changed since the session started (`since`, seconds since the epoch)."""
    uid = os.getuid() if uid is None else uid
    return [e for e in entries if e.uid == uid and e.ctime >= since - _CLOCK_SLACK]
