"""Removing our containers: one by name (cancel, timeout, error), or orphans whose owner died."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from typing import TypedDict

from containerrunner.errors import EngineError, EngineTimeoutError
from containerrunner.isolation.client import client_for
from containerrunner.isolation.client_types import ContainerInfo, Removal
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
from containerrunner.procinfo import host_name, pid_alive

log = logging.getLogger(__name__)

REMOVE_TIMEOUT = 60.0


class OwnedContainer(TypedDict):
    """A container carrying our labels, as `list_ours` reports it."""

    name: str
    ident: str
    owner_pid: int | None
    owner_host: str
    owner_uid: int
    state: str


def remove_container(engine: Engine, name: str) -> Removal | None:
    """Kill and remove container `name` at once (the engine client: its API, else its CLI);
    a container that is already gone is fine. What was done, or None after a failure.

    Never raises on a cleanup path, except EngineError when the engine itself cannot be run;
    other failures (a timeout, an engine error) are logged as warnings.
    """
    since = time.time()
    try:
        outcome = client_for(engine).remove(name)
    except EngineTimeoutError as exc:
        log.warning("%s", exc)
        return None
    except EngineError as exc:
        if not engine_runs(engine):
            raise
        log.warning("%s", exc)
        return None
    # The engine is already removing it (docker's --rm racing our rm): wait for its removal
    # event, so that "removed" means gone when we return. (docker 20.10's CLI has no
    # `container wait --condition removed`.)
    if outcome == "in-progress" and not wait_for(
        engine, name, engine.removed_event, since, REMOVE_TIMEOUT
    ):
        log.warning("%s: the removal in progress did not end within %gs", name, REMOVE_TIMEOUT)
    return outcome


def stop_container(engine: Engine, name: str, grace: float) -> None:
    """Stop container `name`: SIGTERM to its init, then SIGKILL after the grace (whole
    seconds, rounded up); a container that is already gone (or not yet made) is fine.
    Failures are logged, never raised, except EngineError when the engine itself cannot be
    run."""
    try:
        client_for(engine).stop(name, math.ceil(grace))
    except EngineTimeoutError as exc:
        log.warning("%s", exc)
    except EngineError as exc:
        if not engine_runs(engine):
            raise
        log.warning("%s", exc)


def engine_runs(engine: Engine) -> bool:
    """Whether the engine's executable is there (a cleanup failure is logged, not raised,
    unless the engine itself cannot be run)."""
    return shutil.which(engine.executable) is not None or os.path.isfile(engine.executable)


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
    sharing one engine (the docker group) never see or remove each other's containers.
    One list query (the engine client)."""
    owner = os.getuid() if uid is None else uid
    found = [owned(c) for c in client_for(engine).containers(LABEL)]
    return [c for c in found if c["owner_uid"] == owner]


def owned(container: ContainerInfo) -> OwnedContainer:
    """A listed container's name, ident, owner and state, from its labels."""
    labels = container.labels
    return OwnedContainer(
        name=container.name,
        ident=labels.get(LABEL_IDENT, ""),
        owner_pid=_parse_pid(labels.get(LABEL_OWNER_PID, "")),
        owner_host=labels.get(LABEL_OWNER_HOST, ""),
        owner_uid=_parse_uid(labels.get(LABEL_OWNER_UID, "")),
        state=container.state,
    )


def remove_if_owned(engine: Engine, name: str, owner_pid: int) -> bool:
    """Remove container `name` only if process `owner_pid` of this host and this user
    started it.

    (A later job may have reused the name.) Returns whether it was removed.
    """
    host = host_name()
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
    pid are left alone; one that is gone by the time it is removed (another reaper was
    faster) is not in the list.
    """
    return [c["name"] for c in reap_orphans_owned(engine)]


def reap_orphans_owned(engine: Engine) -> list[OwnedContainer]:
    """`reap_orphans`, with what was known of each removed container (`containerrunner
    cleanup` reports it)."""
    host = host_name()
    reaped: list[OwnedContainer] = []
    for container in list_ours(engine):
        pid = container["owner_pid"]
        if container["owner_host"] != host or pid is None or pid_alive(pid):
            continue
        if remove_container(engine, container["name"]) in ("removed", "in-progress"):
            reaped.append(container)
    return reaped
