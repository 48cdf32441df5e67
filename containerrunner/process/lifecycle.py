"""One lifecycle for every backend: start, pump output, watch deadlines, stop, reap, clean up.

The calling thread waits in the backend's selector with a timeout computed from the deadlines
(start timeout, job timeout, idle timeout, next cancel_callback poll); it is woken early by
output, by the child's exit, by the steering's wake-up fd (cancel, terminate, kill, keep
waiting) and, in a container's start phase, by the engine's start event. When the job must stop
(a timeout, a cancel, or any exception in this thread, Ctrl-C included) it escalates within the
termination grace: a container gets `<engine> stop --time grace` (SIGTERM, then SIGKILL), is
removed (`rm --force`), and then its engine client; a job exec'd in a warm session's
container gets SIGTERM and, after the grace, SIGKILL inside that container (its process group,
`reaper.signal_exec`; the session's container stays); a host process group gets SIGTERM and,
after the grace, SIGKILL. The child is reaped and every thread and fd released in `finally`.
Without `before_stop` (the Runner's, which leaves that to `tempdirs`), the Ansible module dirs
that a stopped host process's descendants made (remote temp dirs, AnsiballZ payload dirs) are
removed once they all ended.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

from containerrunner.errors import ContainerRunnerError, describe_returncode
from containerrunner.isolation.engine import unreachable_reason
from containerrunner.isolation.reaper import remove_container, signal_exec, stop_container
from containerrunner.isolation.started import StartWatcher
from containerrunner.isolation.types import Invocation
from containerrunner.process.base import Backend
from containerrunner.process.controls import (
    Outcome,
    ProcessControls,
    ProcessResult,
    Watch,
)
from containerrunner.process.pipes import PipeBackend
from containerrunner.process.preload import start_preloaded
from containerrunner.process.pty import PtyBackend
from containerrunner.process.steering import drain
from containerrunner.process.terminal import TerminalBackend, terminal_fd

log = logging.getLogger(__name__)

# Once its container is gone, how long an engine client may take to exit after SIGTERM.
CLIENT_GRACE = 5.0
# The rc an engine client reports for a container killed by SIGKILL (128 + 9).
CONTAINER_KILLED_RC = 137
# How long a stopped host job's descendants may take to end after its process was reaped,
# before its module dirs are removed (see _remove_module_dirs).
MODULE_EXIT_WAIT = 2.0


def run_process(inv: Invocation, controls: ProcessControls) -> ProcessResult:
    """Run `inv` to its end (or until a timeout or cancel stops it) and say how it ended.

    Raises OSError when the command cannot be started. An exception raised in the calling
    thread while the process runs (a sink, `on_start`, KeyboardInterrupt) stops the job as a
    cancel would and is re-raised once everything is cleaned up, with a note on what was done.
    """
    backend: Backend
    if _preloadable(inv, controls) and (preloaded := start_preloaded(inv, controls)) is not None:
        return _run(preloaded, inv, controls, started=True)
    if controls.mode == "pexpect":
        backend = PtyBackend(inv, controls)
    elif (terminal := terminal_fd(controls.stdin)) is not None:
        backend = TerminalBackend(inv, controls, terminal)
    else:
        backend = PipeBackend(inv, controls)
    return _run(backend, inv, controls)


def _preloadable(inv: Invocation, controls: ProcessControls) -> bool:
    """A call in a session whose preloader may run it: pipes, no stdin, no terminal."""
    spec = inv.exec_spec
    return (
        spec is not None
        and spec.preload_socket is not None
        and controls.mode == "subprocess"
        and controls.stdin is None
        and not spec.tty
        and not spec.interactive
    )


def _run(
    backend: Backend, inv: Invocation, controls: ProcessControls, started: bool = False
) -> ProcessResult:
    since = time.time()
    if not started:
        try:
            backend.start()
        except BaseException:
            backend.close()
            raise
    starts_container = inv.container_name is not None and inv.engine is not None
    in_container = starts_container or inv.exec_spec is not None
    watch = Watch(controls, time.monotonic(), starting=starts_container)
    stop: tuple[Outcome, str] | None = None
    error: BaseException | None = None
    try:
        with contextlib.ExitStack() as watching:
            if controls.steering is not None:
                fd = watching.enter_context(controls.steering.attached())
                backend.watch_fd(fd, lambda: drain(fd))
                watching.callback(backend.unwatch_fd, fd)
            if watch.starting:
                watching.enter_context(_start_watch(backend, inv, watch, since))
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
        looked: tuple[list[int], set[str]] = ([], set())
        if stop is not None:
            if controls.before_stop is None and not in_container:
                looked = _module_dirs_below(backend.pid)
            _before_stop(controls)
            late = _stop(backend, inv, watch.grace, late_create=watch.starting)
            if error is None and late is not None:
                error = late
        rc = backend.reap()
        _remove_module_dirs(*looked)
    finally:
        backend.close()
    if error is not None:
        error.add_note(
            f"containerrunner: {inv.argv[0]} (pid {backend.pid}) was stopped "
            f"({describe_returncode(rc)})"
        )
        raise error
    if stop is not None:
        killed = rc == -signal.SIGKILL or (in_container and rc == CONTAINER_KILLED_RC)
        return ProcessResult(
            rc=rc, outcome=stop[0], reason=stop[1], stopped="killed" if killed else "terminated"
        )
    reason = None
    if in_container and inv.engine is not None:  # a daemon that died mid-run is named
        reason = unreachable_reason(inv.engine, rc)
    return ProcessResult(
        rc=rc,
        outcome="successful" if rc == 0 else "failed",
        reason=reason or describe_returncode(rc),
    )


@contextlib.contextmanager
def _start_watch(backend: Backend, inv: Invocation, watch: Watch, since: float) -> Iterator[None]:
    """While the container starts, the engine's start event ends the start phase."""
    assert inv.engine is not None and inv.container_name is not None
    try:
        watcher = StartWatcher(inv.engine, inv.container_name, since)
    except OSError as exc:  # the container's first output still ends the start phase
        log.warning("cannot watch the start of %s: %s", inv.container_name, exc)
        yield
        return

    def on_ready() -> None:
        state = watcher.read()
        if state != "pending":
            backend.unwatch_fd(watcher.fd)
        if state == "started" and watch.starting:
            watch.started(time.monotonic())

    backend.watch_fd(watcher.fd, on_ready)
    try:
        yield
    finally:
        backend.unwatch_fd(watcher.fd)
        watcher.close()


def _module_dirs_below(pid: int) -> tuple[list[int], set[str]]:
    """Process `pid` and its descendants, and the Ansible module dirs they made
    (ProcessControls' `before_stop`); a failure to look is logged, never kept from the stop."""
    from containerrunner.procinfo import descendants
    from containerrunner.tempdirs import module_dirs_of

    try:
        pids = descendants(pid)
        return pids, module_dirs_of(pids)
    except Exception:
        log.warning("looking for the stopped job's module dirs failed", exc_info=True)
        return [], set()


def _remove_module_dirs(pids: list[int], paths: set[str]) -> None:
    """Remove `paths` once every one of `pids` ended (up to MODULE_EXIT_WAIT after the
    stop); while one still runs (it left the process group: the stop did not reach it) they
    stay, as it may use them."""
    if not paths:
        return
    from containerrunner.procinfo import signal_and_wait

    if left := signal_and_wait(pids, 0, MODULE_EXIT_WAIT):
        log.warning("leaving %s: processes %s of the stopped job still run", sorted(paths), left)
        return
    for path in sorted(paths):
        log.info("removing %s, left by a stopped module", path)
        shutil.rmtree(path, ignore_errors=True)


def _before_stop(controls: ProcessControls) -> None:
    """`controls.before_stop`, whose failure never keeps the job from being stopped."""
    if controls.before_stop is None:
        return
    try:
        controls.before_stop()
    except Exception:
        log.warning("before_stop failed; stopping the job anyway", exc_info=True)


def _stop(
    backend: Backend, inv: Invocation, grace: float, late_create: bool
) -> BaseException | None:
    """Stop the job within `grace`: the container (`stop --time grace`, `rm --force`), then
    the process group (SIGTERM, SIGKILL after the grace); wait for the child.

    Output is still read meanwhile (so the child never blocks writing) and given to the sinks
    unless one raised. Returns an exception raised meanwhile (a sink, a second Ctrl-C, which
    also skips the rest of the grace period), to be raised after cleanup.
    """
    backend.stopping = True
    late: BaseException | None = None
    client_grace = grace
    engine, name = inv.engine, inv.container_name
    if name and engine is not None:
        if grace > 0:
            late = _engine_call(stop_container, engine, name, grace)
        late = late or _engine_call(remove_container, engine, name)
        client_grace = min(grace, CLIENT_GRACE)
    elif backend.signals_in_container:  # the session's preloader signals its child's group
        backend.signal_group(signal.SIGTERM)
        late = _pump_until(backend, lambda: backend.exited, grace)
        backend.signal_group(signal.SIGKILL)
        client_grace = 0.0
    elif (spec := inv.exec_spec) is not None:  # in a session: its process, not its container
        if grace > 0:
            late = _engine_call(signal_exec, spec.engine, spec.container, spec.pidfile, "TERM")
            late = late or _pump_until(backend, lambda: backend.exited, grace)
        if not backend.exited:
            late = late or _engine_call(
                signal_exec, spec.engine, spec.container, spec.pidfile, "KILL"
            )
        client_grace = min(grace, CLIENT_GRACE)
    if client_grace > 0:
        backend.signal_group(signal.SIGTERM)
        late = late or _pump_until(backend, lambda: backend.exited, client_grace)
    # Whatever is left of the group (children that outlived their parent) goes too; the child
    # is not reaped yet, so the group id cannot have been reused.
    backend.signal_group(signal.SIGKILL)
    for done in (lambda: backend.exited, lambda: backend.finished):
        while (raised := _pump_until(backend, done, None)) is not None:
            late = late or raised
    if late_create and name and engine is not None:
        # stopped while starting: the engine may have made the container after the first rm
        late = late or _engine_call(remove_container, engine, name)
    return late


def _engine_call(call: Callable[..., object], *args: Any) -> BaseException | None:
    """Run a cleanup call of the engine; an exception other than the engine's own failure
    (which is logged) is returned, to be raised after cleanup (e.g. a second Ctrl-C)."""
    try:
        call(*args)
    except ContainerRunnerError as exc:  # the engine cannot be run: still kill the client
        log.warning("%s", exc)
    except BaseException as exc:
        return exc
    return None


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
