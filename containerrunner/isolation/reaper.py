"""Removing our containers: one by name (cancel, timeout, error), or orphans whose owner died."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from typing import TypedDict

from containerrunner.errors import EngineError
from containerrunner.isolation.engine import (
    LABEL,
    LABEL_IDENT,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    Engine,
)

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
    state: str


def _engine_gone(engine: Engine, exc: OSError) -> EngineError:
    return EngineError(f"cannot run {engine.name} ({engine.executable!r}): {exc}")


def remove_container(engine: Engine, name: str) -> None:
    """Kill and remove container `name`; a container that is already gone is fine.

    Never raises on a cleanup path, except EngineError when the engine itself cannot be run;
    other failures (a timeout, an engine error) are logged as warnings.
    """
    argv = engine.remove_args(name)
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=REMOVE_TIMEOUT,
            check=False,
        )
    except OSError as exc:
        raise _engine_gone(engine, exc) from exc
    except subprocess.TimeoutExpired:
        log.warning("`%s` did not finish within %g s", " ".join(argv), REMOVE_TIMEOUT)
        return
    if proc.returncode == 0:
        return
    stderr = proc.stderr.strip()
    if _IN_PROGRESS in stderr.lower():
        # The engine is already removing it (docker's --rm racing our rm): wait for the end,
        # so that "removed" means gone when we return.
        _run_quietly(engine.wait_removed_args(name))
        return
    if any(marker in stderr.lower() for marker in _GONE_MARKERS):
        return
    log.warning("`%s` failed (rc %d): %s", " ".join(argv), proc.returncode, stderr)


def _run_quietly(argv: list[str]) -> None:
    try:
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=REMOVE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("`%s` failed: %s", " ".join(argv), exc)


def _parse_pid(text: str) -> int | None:
    try:
        pid = int(text)
    except ValueError:
        return None
    return pid if pid > 0 else None


def list_ours(engine: Engine) -> list[OwnedContainer]:
    """Every container (running or not) labelled `containerrunner`, with ident and owner."""
    fields = [
        "{{.Names}}",
        engine.label_field(LABEL_IDENT),
        engine.label_field(LABEL_OWNER_PID),
        engine.label_field(LABEL_OWNER_HOST),
        "{{.State}}",
    ]
    argv = engine.command("ps", "-a", "--filter", f"label={LABEL}", "--format", "\t".join(fields))
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LIST_TIMEOUT,
            check=False,
        )
    except OSError as exc:
        raise _engine_gone(engine, exc) from exc
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"`{' '.join(argv)}` did not finish within {LIST_TIMEOUT:g} s") from exc
    if proc.returncode != 0:
        raise EngineError(f"`{' '.join(argv)}` failed (rc {proc.returncode}): {proc.stderr}")
    return parse_ps_output(proc.stdout)


def parse_ps_output(text: str) -> list[OwnedContainer]:
    """Parse the tab-separated lines `list_ours` asks the engine for."""
    out: list[OwnedContainer] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cols = (line.split("\t") + [""] * 5)[:5]
        name, ident, pid, host, state = (c.strip() for c in cols)
        out.append(
            OwnedContainer(
                name=name.split(",")[0],
                ident=ident,
                owner_pid=_parse_pid(pid),
                owner_host=host,
                state=state.lower(),
            )
        )
    return out


def pid_alive(pid: int) -> bool:
    """True when a process `pid` exists on this host (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(engine: Engine) -> list[str]:
    """Remove our containers whose owner process on this host is gone; their names.

    Containers owned by another host, or without a readable owner pid, are left alone.
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
