"""Helpers for the process tests (no tests here): python children, sinks that synchronise."""

from __future__ import annotations

import json
import os
import select
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from containerrunner.isolation.engine import Engine, EngineName
from containerrunner.isolation.types import Invocation

# Only a guard against a hanging test: nothing waits this long when the code works.
GUARD = 30.0


def py(
    code: str,
    cwd: Path | str = ".",
    container_name: str | None = None,
    engine: Engine | None = None,
    **env: str,
) -> Invocation:
    """An Invocation running `python -c code` (dedented), unbuffered."""
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    return Invocation(
        argv=(sys.executable, "-c", textwrap.dedent(code)),
        cwd=str(cwd),
        env=child_env,
        container_name=container_name,
        engine=engine,
    )


class Collector:
    """A sink that keeps what it got and can act once a marker has appeared in it."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._triggers: list[tuple[str, Callable[[], None]]] = []
        self.seen: dict[str, threading.Event] = {}

    def __call__(self, text: str) -> None:
        self.chunks.append(text)
        joined = self.text
        for marker, action in list(self._triggers):
            if marker in joined:
                self._triggers.remove((marker, action))
                action()

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def on(self, marker: str, action: Callable[[], None]) -> Collector:
        """Call `action` (in the sink's thread) once `marker` is in the output."""
        self._triggers.append((marker, action))
        return self

    def event(self, marker: str) -> threading.Event:
        """An Event set once `marker` is in the output."""
        event = threading.Event()
        self.on(marker, event.set)
        return event


def wait_eof(fd: int) -> bool:
    """Wait until every writer of the FIFO/pipe `fd` is gone (EOF); False if the guard ran out."""
    while True:
        ready, _, _ = select.select([fd], [], [], GUARD)
        if not ready:
            return False
        if os.read(fd, 4096) == b"":
            return True


def make_fifo(path: Path) -> int:
    """A FIFO at `path`, opened for reading without blocking (so writers can open it)."""
    os.mkfifo(path)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def fake_engine(tmp_path: Path, name: EngineName = "docker") -> tuple[Engine, Path]:
    """An Engine whose executable appends its argv to a log file (and does nothing else)."""
    log = tmp_path / "engine.log"
    script = tmp_path / f"fake-{name}"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    script.chmod(0o755)
    return Engine(name=name, executable=str(script)), log


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def fake_engine_with_ps(
    tmp_path: Path, containers: list[dict[str, Any]], name: EngineName = "docker"
) -> tuple[Engine, Path]:
    """A fake engine (argv appended to a log) with `containers` (inspect documents): its `ps`
    prints their IDs, `container inspect` their documents (as the engines' CLIs do)."""
    engine, log = fake_engine(tmp_path, name)
    ids = tmp_path / "ps.out"
    ids.write_text("".join(f"{c['Id']}\n" for c in containers))
    docs = tmp_path / "inspect.json"
    docs.write_text(json.dumps(containers))
    script = Path(engine.executable)
    script.write_text(
        f'#!/bin/sh\necho "$*" >> "{log}"\n'
        f'case "$1 $2" in "ps "*) cat "{ids}";; "container inspect") cat "{docs}";; esac\n'
        "exit 0\n"
    )
    return engine, log
