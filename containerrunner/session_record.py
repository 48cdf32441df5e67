"""The record of a running warm session, so that other processes can find and use it.

Every `Session` writes `SESSION_FILE` into its runtime dir (a `containerrunner-session-*` dir in
the temp dir, whose owner record names the process holding the session and its container) once
its container runs. `live_sessions()` lists the records whose holder still runs;
`find_session(ID)` picks one by its ident or a unique prefix of it (`containerrunner run
--session ID`, `Session.attach(ID)`). The record goes with the runtime dir when the session is
closed, or when the reaper removes what a dead holder left.

The record holds no secret: the image, the mounts (paths only), the engine and the container's
name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from containerrunner.errors import ConfigurationError
from containerrunner.isolation.types import Mount
from containerrunner.tempdirs import PREFIX, Owner, ours_in_tempdir, read_owner

SESSION_FILE = "session.json"
SESSION_DIR_PREFIX = f"{PREFIX}session-"
_RECORD_MAX_BYTES = 1 << 20

#: who holds a session: a Python process's `Session` object, or `containerrunner session start`
HELD_BY = ("python", "cli")


@dataclass(frozen=True)
class SessionRecord:
    ident: str
    container: str
    engine: str
    executable: str
    image: str
    image_id: str | None
    mounts: tuple[Mount, ...]
    created: float  # time.time() when the container ran
    held_by: str  # one of HELD_BY
    runtime_dir: str
    owner: Owner | None = None  # filled in when read

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.created)

    def to_json(self) -> dict[str, object]:
        return {
            "ident": self.ident,
            "container": self.container,
            "engine": self.engine,
            "executable": self.executable,
            "image": self.image,
            "image_id": self.image_id,
            "mounts": [[m.source, m.target, m.read_only, m.secret] for m in self.mounts],
            "created": self.created,
            "held_by": self.held_by,
            "runtime_dir": self.runtime_dir,
        }


def write_record(record: SessionRecord) -> None:
    """Write (or replace) the record in its runtime dir, atomically: a reader sees the old
    record, the new one or none, never a part of one."""
    data = json.dumps(record.to_json()).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".session-", dir=record.runtime_dir)
    try:
        os.write(fd, data)
        os.close(fd)
        os.replace(tmp, os.path.join(record.runtime_dir, SESSION_FILE))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_record(runtime_dir: str) -> SessionRecord | None:
    """The record in `runtime_dir` with its owner, or None (none, unreadable, malformed)."""
    path = os.path.join(runtime_dir, SESSION_FILE)
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(_RECORD_MAX_BYTES).decode("utf-8"))
        mounts = tuple(
            Mount(str(s), str(t), bool(ro), bool(secret)) for s, t, ro, secret in data["mounts"]
        )
        record = SessionRecord(
            ident=str(data["ident"]),
            container=str(data["container"]),
            engine=str(data["engine"]),
            executable=str(data["executable"]),
            image=str(data["image"]),
            image_id=None if data["image_id"] is None else str(data["image_id"]),
            mounts=mounts,
            created=float(data["created"]),
            held_by=str(data["held_by"]),
            runtime_dir=runtime_dir,
            owner=read_owner(runtime_dir),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return record


def live_sessions(tmp: str | None = None) -> list[SessionRecord]:
    """The sessions of this user whose holder process still runs, oldest first."""
    found = []
    for path in ours_in_tempdir(tmp):
        if not os.path.basename(path).startswith(SESSION_DIR_PREFIX):
            continue
        record = read_record(path)
        if record is None or record.owner is None or record.owner.gone:
            continue
        found.append(record)
    return sorted(found, key=lambda r: r.created)


def find_session(wanted: str, records: Sequence[SessionRecord] | None = None) -> SessionRecord:
    """The live session whose ident is `wanted`, or the only one whose ident starts with it;
    ConfigurationError naming `wanted` otherwise."""
    records = live_sessions() if records is None else records
    exact = [r for r in records if r.ident == wanted]
    if exact:
        return exact[0]
    matches = [r for r in records if wanted and r.ident.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigurationError(
            f"no running session {wanted!r}: `containerrunner session list` shows the running "
            f"ones, `containerrunner session start` starts one"
        )
    idents = ", ".join(r.ident for r in matches)
    raise ConfigurationError(f"session {wanted!r} is ambiguous: it starts {idents}; give more")
