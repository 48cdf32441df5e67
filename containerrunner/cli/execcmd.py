"""`exec` (any command in the EE) and `shell` (an interactive shell in the EE)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import yaml

from containerrunner.cli.args import UsageError
from containerrunner.cli.common import debug_status_handler, exit_code
from containerrunner.cli.signals import CancelOnSignal
from containerrunner.errors import ContainerRunnerError
from containerrunner.isolation.containerize import container_name
from containerrunner.isolation.engine import detect_engine
from containerrunner.tempdirs import fresh_path, make_dir, remove_dir

# bash when the image has it, else sh; both read commands from stdin when it is not a TTY.
SHELL_COMMAND = ("sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi")


def parse_password_option(value: str) -> tuple[str, str]:
    """`REGEX=ANSWER` -> (regex, answer), split at the last `=` (a regex may contain `=`)."""
    regex, sep, answer = value.rpartition("=")
    if not sep or not regex:
        raise UsageError(f"--password must be REGEX=ANSWER, got {value!r}", "containerrunner exec")
    _check_regex(regex, "--password")
    return regex, answer


def _check_regex(regex: str, where: str) -> None:
    try:
        re.compile(regex)
    except re.error as exc:
        raise UsageError(
            f"{where}: {regex!r} is not a valid regex: {exc}", "containerrunner exec"
        ) from None


def read_passwords_file(path: str) -> dict[str, str]:
    """A YAML or JSON mapping of regex: answer (the format of env/passwords)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise UsageError(
            f"--passwords-file {path!r}: {exc.strerror}", "containerrunner exec"
        ) from None
    except yaml.YAMLError as exc:
        raise UsageError(
            f"--passwords-file {path!r} is not YAML or JSON: {' '.join(str(exc).split())}",
            "containerrunner exec",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            f"--passwords-file {path!r} must hold a mapping of REGEX: ANSWER",
            "containerrunner exec",
        )
    passwords: dict[str, str] = {}
    for regex, answer in data.items():
        _check_regex(str(regex), f"--passwords-file {path!r}")
        passwords[str(regex)] = "" if answer is None else str(answer)
    return passwords


def collect_passwords(args: argparse.Namespace) -> dict[str, str]:
    """--passwords-file first, then each --password (which wins for the same regex)."""
    passwords: dict[str, str] = {}
    if getattr(args, "passwords_file", None):
        passwords.update(read_passwords_file(args.passwords_file))
    for value in getattr(args, "passwords", None) or ():
        regex, answer = parse_password_option(value)
        passwords[regex] = answer
    return passwords


def parse_env_options(values: Sequence[str] | None) -> dict[str, str]:
    """`NAME=VALUE` sets NAME; a bare `NAME` passes this process's value (skipped if unset)."""
    env: dict[str, str] = {}
    for value in values or ():
        name, sep, text = value.partition("=")
        if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(
                f"--env must be NAME=VALUE or NAME, got {value!r}", "containerrunner exec"
            )
        if sep:
            env[name] = text
        elif name in os.environ:
            env[name] = os.environ[name]
    return env


@contextlib.contextmanager
def _scratch_dir(parent: str | None = None) -> Iterator[str]:
    path = make_dir(fresh_path("exec", parent))
    try:
        yield path
    finally:
        remove_dir(path)


def run_in_ee(
    command: Sequence[str], args: argparse.Namespace, passwords: dict[str, str] | None = None
) -> int:
    """Run `command` in the EE with the caller's stdio; returns its exit code."""
    from rich.console import Console

    from containerrunner.cli.jobcmds import attach_session
    from containerrunner.cli.progress import PullLines
    from containerrunner.interface import run_command

    ident = f"exec-{uuid.uuid4().hex[:12]}"
    session = attach_session(args.session)
    # in a session, the scratch dir (the call's artifact dir) is in its runtime dir: mounted
    with _scratch_dir(session.runtime_dir if session else None) as scratch:
        options: dict[str, Any] = {
            "session": session,
            "process_isolation": True,
            "process_isolation_executable": args.engine,
            "container_image": args.image,
            "pull": args.pull,
            "container_network": args.container_network,
            "container_volume_mounts": args.container_volume_mounts,
            "container_options": args.container_options,
            "envvars": parse_env_options(args.env) or None,
            "ident": ident,
            "artifact_dir": scratch,
            "suppress_output_file": True,
            "quiet": True,
            # a pull before the command starts: its steps on stderr, as `<engine> run` does
            "pull_progress_handler": PullLines(Console(file=sys.stderr, soft_wrap=True)),
        }
        if args.debug:
            options["status_handler"] = debug_status_handler(os.path.join(scratch, ident))
        if passwords:
            # pexpect: a pty; the merged output goes to our stdout as it arrives.
            options.update(runner_mode="pexpect", passwords=passwords, output_fd=sys.stdout)
        else:
            options.update(input_fd=sys.stdin, output_fd=sys.stdout, error_fd=sys.stderr)
        options = {k: v for k, v in options.items() if v is not None}
        # With a TTY, Ctrl-C is a byte the container's pty turns into SIGINT. Without one the
        # SIGINT reaches only us (the engine client runs in its own session): the first one is
        # passed to the container (`<engine> kill --signal INT`), a second one cancels the job
        # (the container is stopped and removed).
        # In a session the first one stops the exec'd command (the session's container stays).
        forward = functools.partial(_interrupt_container, args.engine, container_name(ident))
        signals = (
            CancelOnSignal()
            if session
            else CancelOnSignal(sigint_cancels=False, on_first_interrupt=forward)
        )
        with signals.installed() as cancel:
            options["cancel_callback"] = cancel.is_set
            _out, _err, rc = run_command(command[0], list(command[1:]), **options)
        status = "successful" if rc == 0 else "failed"
        return exit_code(status, rc)


def _interrupt_container(engine_choice: str, name: str) -> None:
    """Send SIGINT to container `name`, in a thread (this runs in a signal handler)."""

    def send() -> None:
        try:
            engine = detect_engine(engine_choice)
            subprocess.run(
                engine.command("kill", "--signal", "INT", name),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (ContainerRunnerError, OSError, subprocess.TimeoutExpired):
            pass  # the second Ctrl-C still cancels

    threading.Thread(target=send, name="containerrunner-sigint", daemon=True).start()


def cmd_exec(args: argparse.Namespace) -> int:
    passwords = collect_passwords(args)
    return run_in_ee(args.cmd, args, passwords)


def cmd_shell(args: argparse.Namespace) -> int:
    return run_in_ee(SHELL_COMMAND, args)
