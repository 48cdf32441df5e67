"""`python -m containerrunner.cluster.adapter SPEC`: one job on a scheduler, for the relay.

Reads the payload (the relay's header line and zip) from stdin to EOF, submits the job
described by SPEC (an `AdapterSpec` JSON file) through its backend, writes the job's stdout
(the bootstrap's stream) to stdout until the job ends and exits with the job's return code.
On SIGTERM, SIGINT, SIGHUP or a closed stdout it removes the job (and what was made for it)
before exiting; it removes it at the end in every case. Exit 125 when the job never ran.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from types import FrameType

from containerrunner.cluster.base import (
    SCHEDULER_RECORD,
    AdapterSpec,
    ClusterJobRef,
    backend_for,
)

#: rc when the scheduler could not run the job
NOT_RUN = 125


class _Stop(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signum)


def _record(spec: AdapterSpec, ref: ClusterJobRef, node: str | None) -> None:
    """Where the job ran, in its artifacts dir (run_group reports it per job)."""
    if spec.report_dir is None or not os.path.isdir(spec.report_dir):
        return
    with open(os.path.join(spec.report_dir, SCHEDULER_RECORD), "w", encoding="utf-8") as out:
        json.dump({"backend": ref.backend, "job": ref.id, "node": node}, out)


def run_adapter(spec: AdapterSpec) -> int:
    backend = backend_for(spec.backend, spec.scheduler_options())
    payload = sys.stdin.buffer.read()
    ref: ClusterJobRef | None = None
    out = sys.stdout.buffer
    try:
        ref = backend.submit(spec, payload)
        for chunk in backend.follow(ref):
            out.write(chunk)
            out.flush()
        return backend.exit_code(ref)
    except _Stop as stop:
        return 128 + stop.signum
    except BrokenPipeError:  # the relay is gone: nobody reads the job
        return NOT_RUN
    finally:
        # no second signal may interrupt the cleanup
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if ref is not None:
            try:
                _record(spec, ref, backend.node_of(ref))
            finally:
                backend.remove(ref)


def _term_when_parent_dies() -> None:
    """SIGTERM when the relay dies, however it dies (Linux PR_SET_PDEATHSIG): the adapter
    runs in a session of its own, so nothing else would tell it to remove the job."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def main(argv: list[str]) -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    parent = os.getppid()
    _term_when_parent_dies()
    if os.getppid() != parent:  # the relay died before the death signal was set
        return NOT_RUN
    if len(argv) != 1:
        sys.stderr.write("usage: python -m containerrunner.cluster.adapter SPEC\n")
        return 2
    # scratch files (a registry login's config) go with the job's runtime dir, where the
    # spec lies: removed with it, and reaped with it when the caller dies
    tempfile.tempdir = os.path.dirname(os.path.abspath(argv[0]))
    try:
        spec = AdapterSpec.read(argv[0])
        return run_adapter(spec)
    except _Stop as stop:
        return 128 + stop.signum
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        sys.stderr.write(f"containerrunner: error: scheduler job: {exc}\n")
        return NOT_RUN
    except Exception as exc:  # ConfigurationError from backend_for
        sys.stderr.write(f"containerrunner: error: scheduler job: {exc}\n")
        return NOT_RUN


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
