"""Removing our containers: one by name (cancel, timeout, error), or orphans whose owner died."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TypedDict

from containerrunner.errors import EngineError, EngineTimeoutError
from containerrunner.isolation.engine import (
    LABEL,
    LABEL_IDENT,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_UID,
    Engine,
    run_engine,
)
from containerrunner.isolation.started import wait_for
from containerrunner.procinfo import pid_alive

log = logging.getLogger(__name__)

REMOVE_TIMEOUT = 60.0
LIST_TIMEOUT = 60.0

_GONE_MARKERS = ("no such container", "no container with name or id")
_IN_PROGRESS = "is already in progress"


class OwnedContainer(TypedDict):
    """A container carrying our labels, as `list_ours` reports it."""

    name: str
    ident: str
    owner_pid: int | None
    owner_host: str
    owner_uid: int
    state: str


def remove_container(engine: Engine, name: str) -> None:
    """Kill and remove container `name`; a container that is already gone is fine.

    Never raises on a cleanup path, except EngineError when the engine itself cannot be run;
    other failures (a timeout, an engine error) are logged as warnings.
    """
    args = engine.remove_args(name)
    since = time.time()
    try:
        proc = run_engine(engine, args, REMOVE_TIMEOUT)
    except EngineTimeoutError as exc:
        log.warning("%s", exc)
        return
    if proc.returncode == 0:
        return
    stderr = proc.stderr.strip()
    if _IN_PROGRESS in stderr.lower():
        # The engine is already removing it (docker's --rm racing our rm): wait for its
        # removal event, so that "removed" means gone when we return. (docker 20.10's CLI has
        # no `container wait --condition removed`.)
        if not wait_for(engine, name, engine.removed_event, since, REMOVE_TIMEOUT):
            log.warning("%s: the removal in progress did not end within %gs", name, REMOVE_TIMEOUT)
        return
    if any(marker in stderr.lower() for marker in _GONE_MARKERS):
        return
    log.warning("`%s %s` failed (rc %d): %s", engine.name, " ".join(args), proc.returncode, stderr)


def stop_container(engine: Engine, name: str, grace: float) -> None:
    """`<engine> stop --time grace NAME`: SIGTERM, then SIGKILL after the grace; a container
    that is already gone (or not yet made) is fine. Failures are logged, never raised, except
    EngineError when the engine itself cannot be run."""
    args = engine.stop_args(name, grace)
    try:
        proc = run_engine(engine, args, grace + REMOVE_TIMEOUT)
    except EngineTimeoutError as exc:
        log.warning("%s", exc)
        return
    stderr = proc.stderr.strip()
    if proc.returncode != 0 and not any(marker in stderr.lower() for marker in _GONE_MARKERS):
        command = " ".join(args)
        log.warning("`%s %s` failed (rc %d): %s", engine.name, command, proc.returncode, stderr)


def signal_exec(engine: Engine, container: str, pidfile: str, signame: str) -> None:
    """Send `signame` (TERM, KILL) to the process group of a job exec'd in a session container
    (its leader's pid, inside the container, is in `pidfile`); the session's container and its
    other jobs are left alone. A job not started yet or gone already is fine; failures are
    logged, never raised, except EngineError when the engine itself cannot be run."""
    script = 'pid=$(cat "$0" 2>/dev/null) && [ -n "$pid" ] && kill -s "$1" -- "-$pid" 2>/dev/null'
    args = ["exec", container, "sh", "-c", script, pidfile, signame]
    try:
        proc = run_engine(engine, args, REMOVE_TIMEOUT)
    except EngineTimeoutError as exc:
        log.warning("%s", exc)
        return
    stderr = proc.stderr.strip()
    if proc.returncode not in (0, 1) and stderr:
        log.warning("`%s exec %s` (kill -%s) failed: %s", engine.name, container, signame, stderr)


def _parse_pid(text: str) -> int | None:
    try:
        pid = int(text)
    except ValueError:
        return None
    return pid if pid > 0 else None


def _parse_uid(text: str) -> int:
    """The owner uid label; a container without one (started before the label existed, when
    every caller ran as root) or with a garbled one counts as root's."""
    try:
        uid = int(text)
    except ValueError:
        return 0
    return uid if uid >= 0 else 0


def list_ours(engine: Engine, uid: int | None = None) -> list[OwnedContainer]:
    """The caller's containers (running or not) labelled `containerrunner`, with ident and
    owner: only those whose owner uid is `uid` (default: this process's uid), so that users
    sharing one engine (the docker group) never see or remove each other's containers."""
    fields = [
        "{{.Names}}",
        engine.label_field(LABEL_IDENT),
        engine.label_field(LABEL_OWNER_PID),
        engine.label_field(LABEL_OWNER_HOST),
        "{{.State}}",
        engine.label_field(LABEL_OWNER_UID),
    ]
    args = ["ps", "-a", "--filter", f"label={LABEL}", "--format", "\t".join(fields)]
    proc = run_engine(engine, args, LIST_TIMEOUT)
    if proc.returncode != 0:
        raise EngineError(f"`{engine.name} ps` failed (rc {proc.returncode}): {proc.stderr}")
    owner = os.getuid() if uid is None else uid
    return [c for c in parse_ps_output(proc.stdout) if c["owner_uid"] == owner]


def parse_ps_output(text: str) -> list[OwnedContainer]:
    """Parse the tab-separated lines `list_ours` asks the engine for."""
    out: list[OwnedContainer] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cols = (line.split("\t") + [""] * 6)[:6]
        name, ident, pid, host, state, uid = (c.strip() for c in cols)
        out.append(
            OwnedContainer(
                name=name.split(",")[0],
                ident=ident,
                owner_pid=_parse_pid(pid),
                owner_host=host,
                owner_uid=_parse_uid(uid),
                state=state.lower(),
            )
        )
    return out


def remove_if_owned(engine: Engine, name: str, owner_pid: int) -> bool:
    """Remove container `name` only if process `owner_pid` of this host and this user
    started it.

    (A later job may have reused the name.) Returns whether it was removed.
    """
    host = socket.gethostname()
    for container in list_ours(engine):
        if (container["name"], container["owner_pid"], container["owner_host"]) == (
            name,
            owner_pid,
            host,
        ):
            remove_container(engine, name)
            return True
    return False


def reap_orphans(engine: Engine) -> list[str]:
    """Remove the caller's containers whose owner process on this host is gone; their names.

    Containers of another user (owner uid label), another host, or without a readable owner
    pid are left alone.
    """
    host = socket.gethostname()
    reaped: list[str] = []
    for container in list_ours(engine):
        pid = container["owner_pid"]
        if container["owner_host"] != host or pid is None or pid_alive(pid):
            continue
        remove_container(engine, container["name"])
        reaped.append(container["name"])
    return reaped
