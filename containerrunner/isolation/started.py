"""Learning when a container has started (or is gone), without polling: the engine's events.

`ContainerEvent` runs `<engine> events --since T --filter container=NAME --filter event=E`
(the same arguments for podman and docker); its stdout becomes readable when the event comes.
`since` is a wall-clock time taken before what causes the event (`<engine> run`, `rm`), so an
event that came before the watcher subscribed is still reported. `StartWatcher` watches the
`start` event; `wait_for` waits for one event with a timeout (a select on the stream).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import time
from typing import Literal

from containerrunner.isolation.engine import Engine

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


def container_events_args(name: str, event: str, since: float) -> list[str]:
    return [
        "events",
        "--since",
        f"{since:.3f}",
        "--filter",
        f"container={name}",
        "--filter",
        f"event={event}",
        "--format",
        "{{.Status}}",
    ]


class ContainerEvent:
    """One event of one container; see the module docstring."""

    def __init__(self, engine: Engine, name: str, event: str, since: float) -> None:
        self._proc = subprocess.Popen(
            engine.command(*container_events_args(name, event, since)),
            env=engine.client_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            bufsize=0,
        )
        assert self._proc.stdout is not None
        self.fd = self._proc.stdout.fileno()

    def read(self) -> Literal["started", "ended", "pending"]:
        """Read what came: `started` (the event came), `ended` (the stream ended without
        it: the engine's `events` failed, so the caller stops watching and falls back), or
        `pending`."""
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return "pending"
        if not data:
            log.warning("`%s` ended without the container's event", self._proc.args)
            return "ended"
        return "started" if data.strip() else "pending"

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class StartWatcher(ContainerEvent):
    """The `start` event of container `name` (the end of a job's start phase)."""

    def __init__(self, engine: Engine, name: str, since: float) -> None:
        super().__init__(engine, name, "start", since)


def wait_for(engine: Engine, name: str, event: str, since: float, timeout: float) -> bool:
    """Wait up to `timeout` s for `event` of container `name` (since `since`); whether it came."""
    watcher = ContainerEvent(engine, name, event, since)
    try:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([watcher.fd], [], [], left)[0]:
                return False
            state = watcher.read()
            if state != "pending":
                return state == "started"
        return False
    finally:
        watcher.close()
