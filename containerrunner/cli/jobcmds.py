"""`run`, `start`, `stop` and `is-alive`: a job on an ansible-runner private data dir."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from typing import Any

from containerrunner.cli import daemon
from containerrunner.cli.args import UsageError, parse_role_vars
from containerrunner.cli.common import (
    chain_status_handlers,
    debug_status_handler,
    exit_code,
    say,
)
from containerrunner.cli.progress import Display, NullDisplay, Outcome, choose_display
from containerrunner.cli.signals import CancelOnSignal

StatusHandler = Callable[[dict[str, Any], Any], None]

MAX_VERBOSITY = 5
FAILURE_TAIL_LINES = 15


def private_data_dir(args: argparse.Namespace) -> str:
    path = os.path.abspath(str(args.private_data_dir))
    if not os.path.isdir(path):
        raise UsageError(
            f"private data dir {args.private_data_dir!r} is not a directory",
            f"containerrunner {args.command}",
        )
    return path


def single_value(values: list[str] | None, flag: str, prog: str) -> str | None:
    """The one value of a repeatable flag (None: not given); more than one is a usage error
    where no group runs (`start`)."""
    if not values:
        return None
    if len(values) > 1:
        raise UsageError(
            f"{flag} given more than once ({', '.join(values)}): only `containerrunner run` "
            f"runs a group; give one",
            prog,
        )
    return values[0]


def run_kwargs(
    args: argparse.Namespace,
    *,
    engine: str | None = None,
    image: str | None = None,
    ident: str | None = None,
) -> dict[str, Any]:
    """containerrunner.run() keyword arguments from the run/start options (None: not given).

    `engine`, `image` and `ident` are one job's of a group; None takes them from the options
    (each given at most once there).
    """
    prog = f"containerrunner {args.command}"
    if not (args.playbook or args.module or args.role):
        raise UsageError("give what to run: -p PLAYBOOK, -m MODULE or -r ROLE", prog)
    engine = engine or single_value(args.engine, "--engine", prog)
    image = image or single_value(args.container_image, "--container-image", prog)
    process_isolation = args.process_isolation
    executable = args.process_isolation_executable
    if engine is not None:
        if executable is not None and executable != engine:
            raise UsageError(
                f"--engine {engine} and --process-isolation-executable {executable} "
                f"disagree; give one of them",
                prog,
            )
        process_isolation, executable = True, engine
    if args.engine_url is not None:  # a job on an engine runs in a container
        process_isolation = True
    verbosity = min(args.verbosity, MAX_VERBOSITY) if args.verbosity else None
    kwargs: dict[str, Any] = {
        "private_data_dir": private_data_dir(args),
        "ident": ident or args.ident or str(uuid.uuid4()),
        "playbook": args.playbook,
        "module": args.module,
        "module_args": args.module_args,
        "role": args.role,
        "role_vars": parse_role_vars(args.role_vars) if args.role_vars else None,
        "role_skip_facts": args.role_skip_facts,
        "roles_path": args.roles_path,
        "binary": args.binary,
        "project_dir": args.project_dir,
        "host_pattern": args.hosts,
        "limit": args.limit,
        "tags": args.tags,
        "skip_tags": args.skip_tags,
        "forks": args.forks,
        "inventory": args.inventory,
        "cmdline": args.cmdline,
        "verbosity": verbosity,
        "rotate_artifacts": args.rotate_artifacts,
        "artifact_dir": os.path.abspath(args.artifact_dir) if args.artifact_dir else None,
        "omit_event_data": args.omit_event_data,
        "only_failed_event_data": args.only_failed_event_data,
        "timeout": args.timeout,
        "idle_timeout": args.idle_timeout,
        "start_timeout": args.start_timeout,
        "termination_grace": args.termination_grace,
        "process_isolation": process_isolation,
        "process_isolation_executable": executable,
        "container_image": image,
        "container_volume_mounts": args.container_volume_mounts,
        "container_options": args.container_options,
        "container_network": args.container_network,
        "engine_url": args.engine_url,
        "pull": args.pull,
        "session": attach_session(getattr(args, "session", None)),
        "scheduler": getattr(args, "scheduler", None),
        "scheduler_options": scheduler_options(getattr(args, "scheduler_options", None)),
    }
    return {name: value for name, value in kwargs.items() if value is not None}


#: scheduler options that take a list: repeat --scheduler-option KEY=VALUE for each item
LIST_OPTIONS = ("constraints", "image_pull_secrets")


def scheduler_options(given: list[str] | None) -> dict[str, Any] | None:
    """`--scheduler-option KEY=VALUE` flags as the scheduler_options dict (None: none)."""
    if not given:
        return None
    options: dict[str, Any] = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--scheduler-option {item!r}: expected KEY=VALUE")
        if key in LIST_OPTIONS:
            options.setdefault(key, []).append(value)
        else:
            options[key] = value
    return options


def attach_session(ident: str | None) -> Any:
    """The running session `ident` (`--session`), or None when none was given."""
    if ident is None:
        return None
    from containerrunner.session import Session

    return Session.attach(ident)


def job_artifact_dir(kwargs: dict[str, Any]) -> str:
    base = kwargs.get("artifact_dir") or os.path.join(kwargs["private_data_dir"], "artifacts")
    return os.path.join(base, str(kwargs["ident"]))


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def failure_detail(runner: Any, display: Display, artifact_dir: str) -> str:
    """What to show when the job did not succeed and the events do not say why."""
    if runner.status == "successful":
        return ""
    parts: list[str] = []
    reason = getattr(runner, "reason", "")
    if reason:
        parts.append(str(reason))
    failed = sum(display.tally.counts[k] for k in ("failed", "unreachable"))
    if not failed:
        tail = _tail(os.path.join(artifact_dir, "stderr"), FAILURE_TAIL_LINES) or _tail(
            os.path.join(artifact_dir, "stdout"), FAILURE_TAIL_LINES
        )
        if tail:
            parts.append(tail)
    return "\n".join(parts)


def execute(
    kwargs: dict[str, Any],
    display: Display,
    *,
    debug: bool,
    cancel: CancelOnSignal,
    on_status: StatusHandler | None = None,
) -> int:
    """Run the job with `display` on its events (a typed stream: the display is driven from
    this thread only); returns the exit code."""
    from containerrunner.streams import Event, stream

    artifact_dir = job_artifact_dir(kwargs)
    handler = chain_status_handlers(
        debug_status_handler(artifact_dir) if debug else None, on_status
    )
    seen: set[Any] = set()

    def on_event(event: dict[str, Any]) -> None:
        key = event.get("uuid") or event.get("counter")
        if key not in seen:
            seen.add(key)
            display.event(event)

    display.start()
    try:
        with stream(
            **kwargs,
            quiet=True,  # the display shows the output; the job would echo it too
            progress_handler=display.progress,
            pull_progress_handler=display.pull,
            status_handler=handler,
            cancel_callback=cancel.is_set,
        ) as job:
            for item in job:
                if isinstance(item, Event):
                    on_event(item.data)
        runner = job.runner
        # The job_events files are the record: show any event the live stream did not deliver.
        for event in runner.events:
            on_event(event)
    except BaseException:
        display.finish(None)
        raise
    display.finish(
        Outcome(
            status=runner.status,
            rc=runner.rc,
            artifact_dir=artifact_dir,
            failure_detail=failure_detail(runner, display, artifact_dir),
        )
    )
    return exit_code(runner.status, runner.rc)


def cmd_run(args: argparse.Namespace) -> int:
    from containerrunner.cli import grouprun

    if grouprun.is_group(args):
        return grouprun.cmd_run_group(args)
    kwargs = run_kwargs(args)
    display = choose_display(
        json_mode=args.json, quiet=args.quiet, stdout=sys.stdout, stderr=sys.stderr,
        show_output=args.show_output,
    )  # fmt: skip
    with CancelOnSignal().installed() as cancel:
        code = execute(kwargs, display, debug=args.debug, cancel=cancel)
    if args.junit:
        code = copy_junit(job_artifact_dir(kwargs), args.junit) or code
    return code


def copy_junit(artifact_dir: str, target: str) -> int:
    """Copy the job's junit.xml to `target`; 0, or 1 with the reason said (no traceback)."""
    source = os.path.join(artifact_dir, "junit.xml")
    try:
        shutil.copyfile(source, target)
    except FileNotFoundError as exc:
        missing = "the job wrote no JUnit report" if exc.filename == source else str(exc)
        say(f"--junit {target}: {missing} ({source})")
        return 1
    except OSError as exc:
        say(f"--junit {target}: cannot write it: {exc.strerror or exc}")
        return 1
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    if args.junit:
        raise UsageError(
            "--junit works with run; a started job's report is artifacts/<ident>/junit.xml",
            "containerrunner start",
        )
    if args.max_parallel is not None:
        raise UsageError(
            "--max-parallel works with run (a group); start runs one job",
            "containerrunner start",
        )
    kwargs = run_kwargs(args)
    pdd = kwargs["private_data_dir"]

    def job(report: Callable[[str], None]) -> int:
        def on_status(data: dict[str, Any], config: Any) -> None:
            if data.get("status") in ("running", "successful", "failed", "canceled", "timeout"):
                report("started")

        with CancelOnSignal(announce=False).installed() as cancel:
            return execute(
                kwargs, NullDisplay(), debug=args.debug, cancel=cancel, on_status=on_status
            )

    pid = daemon.start(pdd, job)
    if args.debug:
        say(f"debug: job {kwargs['ident']} runs in daemon pid {pid}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    pdd = private_data_dir(args)
    stopped = daemon.stop(pdd, ident=args.ident)
    if not stopped:
        say(f"no job is running for {pdd}")
        return 1
    return 0


def cmd_is_alive(args: argparse.Namespace) -> int:
    return 0 if daemon.is_alive(os.path.abspath(args.private_data_dir)) else 1
