"""`containerrunner transmit | worker | process`: the job stream on stdin and stdout.

As ansible-runner's commands of the same names: `transmit` takes run's options and writes the
job stream, `worker` runs a job stream read on stdin and writes the result stream, `process`
rebuilds the artifacts dir from a result stream. Exit codes: `transmit` and `worker` 0 once the
stream was written (1 for a bad request or a stream the worker could not use); `process` the
job's return code, 1 when the stream was truncated, corrupt or silent too long.
"""

from __future__ import annotations

import argparse
import os
import sys

from containerrunner.cli.common import CliError, exit_code
from containerrunner.cli.jobcmds import run_kwargs
from containerrunner.cli.signals import CancelOnSignal
from containerrunner.streaming import process, transmit, worker


def cmd_transmit(args: argparse.Namespace) -> int:
    kwargs = run_kwargs(args)
    kwargs.pop("artifact_dir", None)  # the caller's path: `process` takes it
    transmit(sys.stdout.buffer, **kwargs)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    pdd = args.private_data_dir
    if pdd is not None:
        pdd = os.path.abspath(pdd)
        os.makedirs(pdd, exist_ok=True)
    with CancelOnSignal(announce=False).installed() as cancel:  # SIGTERM, Ctrl-C: cancel
        result = worker(
            sys.stdin.buffer,
            sys.stdout.buffer,
            private_data_dir=pdd,
            idle_timeout=args.idle_timeout,
            cancel_callback=cancel.is_set,
        )
    _quiet_broken_stdout()
    if result.job_explanation and result.rc is None:
        raise CliError(f"worker: {result.job_explanation}")
    return 0


def _quiet_broken_stdout() -> None:
    """When the stream's reader went away (the job was canceled for it), the interpreter's
    last flush of stdout would fail and exit 120: point stdout at /dev/null instead."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def cmd_process(args: argparse.Namespace) -> int:
    result = process(
        sys.stdin.buffer,
        private_data_dir=os.path.abspath(args.private_data_dir),
        artifact_dir=args.artifact_dir,
        ident=args.ident,
        quiet=args.quiet,
        idle_timeout=args.idle_timeout,
    )
    if result.status == "error" and result.rc is None:
        raise CliError(f"process: {result.job_explanation or 'the job stream ended in an error'}")
    return exit_code(result.status, result.rc)
