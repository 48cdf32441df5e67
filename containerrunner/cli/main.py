"""Entry point of the `containerrunner` command: parse, dispatch, turn errors into exit codes.

Exit codes: the job's (or command's) return code; 2 for a usage error; 1 for a job or
configuration error (ConfigurationError, EngineError, ImageNotFoundError, ...), which is
reported as one line on stderr (`containerrunner: error: ...`), with the traceback only
under --debug; 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from containerrunner.cli.args import PROG, UsageError, parse_args
from containerrunner.cli.common import CliError
from containerrunner.errors import ContainerRunnerError

Command = Callable[[argparse.Namespace], int]


def _commands() -> dict[str, Command]:
    from containerrunner.cli import cleanup, execcmd, images, jobcmds, sessioncmds, streamcmds

    return {
        "run": jobcmds.cmd_run,
        "start": jobcmds.cmd_start,
        "stop": jobcmds.cmd_stop,
        "is-alive": jobcmds.cmd_is_alive,
        "exec": execcmd.cmd_exec,
        "shell": execcmd.cmd_shell,
        "transmit": streamcmds.cmd_transmit,
        "worker": streamcmds.cmd_worker,
        "process": streamcmds.cmd_process,
        "session start": sessioncmds.cmd_session_start,
        "session stop": sessioncmds.cmd_session_stop,
        "session list": sessioncmds.cmd_session_list,
        "images build": images.cmd_build,
        "images list": images.cmd_list,
        "cleanup": cleanup.cmd_cleanup,
        "images lock": images.cmd_build,
        "images inspect": images.cmd_inspect,
    }


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {_one_line(message)}\n")
    sys.stderr.flush()


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format=f"{PROG}: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parse_args(argv)
    except UsageError as exc:
        _error(f"{exc} (see `{exc.prog} --help`)")
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # a bug in the parser setup: still one line
        if debug:
            traceback.print_exc()
        _error(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1
    debug = bool(getattr(args, "debug", False))
    _configure_logging(debug)
    key = args.command
    if key in ("images", "session"):
        key = f"{key} {getattr(args, f'{key}_command')}"
    try:
        return _commands()[key](args)
    except UsageError as exc:
        _error(f"{exc} (see `{exc.prog} --help`)")
        return 2
    except (ContainerRunnerError, CliError) as exc:
        if debug:
            traceback.print_exc()
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # stdout was closed early (e.g. `containerrunner run ... -j | head`): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
            _error(f"{type(exc).__name__}: {exc}")
        else:
            _error(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1
