"""Learning when a container has started, without polling: the engine's event stream.

`StartWatcher` runs `<engine> events --since T --filter container=NAME --filter event=start`
(the same arguments for podman and docker); its stdout becomes readable when the start event
comes. `since` is a wall-clock time taken before `<engine> run` was spawned, so an event that
came before the watcher subscribed is still reported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from typing import Literal

from containerrunner.isolation.engine import Engine

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


def start_events_args(name: str, since: float) -> list[str]:
    return [
        "events",
        "--since",
        f"{since:.3f}",
        "--filter",
        f"container={name}",
        "--filter",
        "event=start",
        "--format",
        "{{.Status}}",
    ]


class StartWatcher:
    """One container's start event; see the module docstring."""

    def __init__(self, engine: Engine, name: str, since: float) -> None:
        self._proc = subprocess.Popen(
            engine.command(*start_events_args(name, since)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            bufsize=0,
        )
        assert self._proc.stdout is not None
        self.fd = self._proc.stdout.fileno()

    def read(self) -> Literal["started", "ended", "pending"]:
        """Read what came: `started` (the start event), `ended` (the stream ended without
        one: the engine's `events` failed, so the caller stops watching and falls back on
        the container's first output), or `pending`."""
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return "pending"
        if not data:
            log.warning("`%s events` ended without the container's start event", self._proc.args)
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
