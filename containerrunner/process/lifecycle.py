"""One lifecycle for every backend: start, pump output, watch deadlines, stop, reap, clean up.

The calling thread waits in the backend's selector with a timeout computed from the deadlines
(job timeout, idle timeout, next cancel poll); it is woken early by output and by the child's
exit. When the job must stop (a timeout, a cancel, or any exception in this thread, Ctrl-C
included) the container is removed by name first (the engine client need not forward
signals), then the process group gets SIGTERM and, after TERM_GRACE seconds, SIGKILL; the
child is reaped and every thread and fd released in `finally`.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

from containerrunner.errors import ContainerRunnerError, describe_returncode
from containerrunner.isolation.reaper import remove_container
from containerrunner.isolation.types import Invocation
from containerrunner.process.base import Backend
from containerrunner.process.controls import Outcome, ProcessControls, ProcessResult, Watch
from containerrunner.process.pipes import PipeBackend
from containerrunner.process.pty import PtyBackend
from containerrunner.process.terminal import TerminalBackend, terminal_fd

log = logging.getLogger(__name__)

# Seconds between SIGTERM and SIGKILL to the process group when a job is stopped.
TERM_GRACE = 5.0


def run_process(inv: Invocation, controls: ProcessControls) -> ProcessResult:
    """Run `inv` to its end (or until a timeout or cancel stops it) and say how it ended.

    Raises OSError when the command cannot be started. An exception raised in the calling
    thread while the process runs (a sink, `on_start`, KeyboardInterrupt) stops the job as a
    cancel would and is re-raised once everything is cleaned up, with a note on what was done.
    """
    backend: Backend
    if controls.mode == "pexpect":
        backend = PtyBackend(inv, controls)
    elif (terminal := terminal_fd(controls.stdin)) is not None:
        backend = TerminalBackend(inv, controls, terminal)
    else:
        backend = PipeBackend(inv, controls)
    return _run(backend, inv, controls)


def _run(backend: Backend, inv: Invocation, controls: ProcessControls) -> ProcessResult:
    try:
        backend.start()
    except BaseException:
        backend.close()
        raise
    watch = Watch(controls, time.monotonic())
    stop: tuple[Outcome, str] | None = None
    error: BaseException | None = None
    try:
        try:
            if controls.on_start is not None:
                controls.on_start(backend.pid)
            while not backend.finished:
                stop = watch.stop_reason(time.monotonic())
                if stop is not None:
                    break
                if backend.pump(watch.wait_time(time.monotonic())):
                    watch.saw_output(time.monotonic())
        except BaseException as exc:
            error = exc
            backend.muted = True
            stop = ("canceled", f"interrupted by {type(exc).__name__}")
        if stop is not None:
            late = _stop(backend, inv)
            if error is None and late is not None:
                error = late
        rc = backend.reap()
    finally:
        backend.close()
    if error is not None:
        error.add_note(
            f"containerrunner: {inv.argv[0]} (pid {backend.pid}) was stopped "
            f"({describe_returncode(rc)})"
        )
        raise error
    if stop is not None:
        return ProcessResult(rc=rc, outcome=stop[0], reason=stop[1])
    return ProcessResult(
        rc=rc, outcome="successful" if rc == 0 else "failed", reason=describe_returncode(rc)
    )


def _stop(backend: Backend, inv: Invocation) -> BaseException | None:
    """Remove the container, then TERM and KILL the process group; wait for the child.

    Output is still read meanwhile (so the child never blocks writing) and given to the sinks
    unless one raised. Returns an exception raised meanwhile (a sink, a second Ctrl-C, which
    also skips the rest of the grace period), to be raised after cleanup.
    """
    backend.stopping = True
    late: BaseException | None = None
    if inv.container_name and inv.engine is not None:
        try:
            remove_container(inv.engine, inv.container_name)
        except ContainerRunnerError as exc:  # the engine cannot be run: still kill the client
            log.warning("could not remove container %s: %s", inv.container_name, exc)
        except BaseException as exc:  # e.g. a second Ctrl-C while `rm` runs
            late = exc
    backend.signal_group(signal.SIGTERM)
    raised = _pump_until(backend, lambda: backend.exited, TERM_GRACE)
    late = late or raised
    # Whatever is left of the group (children that outlived their parent) goes too; the child
    # is not reaped yet, so the group id cannot have been reused.
    backend.signal_group(signal.SIGKILL)
    for done in (lambda: backend.exited, lambda: backend.finished):
        while (raised := _pump_until(backend, done, None)) is not None:
            late = late or raised
    return late


def _pump_until(
    backend: Backend, done: Callable[[], bool], timeout: float | None
) -> BaseException | None:
    """Pump until `done()` or `timeout`; an exception mutes the sinks and is returned."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not done():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            backend.pump(remaining)
    except BaseException as exc:
        backend.muted = True
        return exc
    return None
