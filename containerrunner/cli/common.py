"""Small helpers the commands share: messages on stderr, exit codes, the --debug argv."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

PROG = "containerrunner"


def say(message: str) -> None:
    """One line on stderr, prefixed with the program name."""
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def exit_code(status: str, rc: int | None) -> int:
    """The job's rc as an exit code: a signal becomes 128+N, and a job that did not succeed
    never exits 0."""
    if rc is None:
        code = 0 if status == "successful" else 1
    elif rc < 0:
        code = 128 + (-rc)
    else:
        code = rc
    if status != "successful" and code == 0:
        code = 1
    return min(code, 255)


def provenance_argv(artifact_dir: str) -> list[str] | None:
    """The argv the Runner executed (artifacts/<ident>/provenance.json 'argv'), if recorded."""
    try:
        with open(os.path.join(artifact_dir, "provenance.json"), encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    argv = record.get("argv") if isinstance(record, dict) else None
    if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
        return argv
    return None


def debug_status_handler(artifact_dir: str) -> Callable[[dict[str, Any], Any], None]:
    """A status_handler that prints the executed argv on stderr once the job runs."""
    shown = False

    def handler(data: dict[str, Any], config: Any) -> None:
        nonlocal shown
        if shown or data.get("status") != "running":
            return
        shown = True
        argv = provenance_argv(artifact_dir)
        if argv is not None:
            say(f"debug: running: {shlex.join(argv)}")
        else:
            say(f"debug: no provenance.json in {artifact_dir}")

    return handler


def chain_status_handlers(
    *handlers: Callable[[dict[str, Any], Any], None] | None,
) -> Callable[[dict[str, Any], Any], None] | None:
    active = [h for h in handlers if h is not None]
    if not active:
        return None

    def handler(data: dict[str, Any], config: Any) -> None:
        for h in active:
            h(data, config)

    return handler


class CliError(Exception):
    """A command failed for a reason the message explains (exit 1)."""


def chosen_engines(
    choice: str, on_absent: Callable[[str, Exception], None] | None = None
) -> list[Any]:
    """The engines an `--engine auto|podman|docker` option names that answer: with `auto`,
    each that does not is passed to `on_absent` and left out; a named one that does not
    raises its EngineError."""
    from containerrunner.errors import EngineError
    from containerrunner.isolation.engine import ENGINE_NAMES, detect_engine

    found = []
    for name in ENGINE_NAMES if choice == "auto" else (choice,):
        try:
            found.append(detect_engine(name))
        except EngineError as exc:
            if choice != "auto":
                raise
            if on_absent is not None:
                on_absent(name, exc)
    return found
