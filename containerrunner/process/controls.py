"""What the caller controls about a running process, what comes back, and the deadlines.

`ProcessControls` is the frozen, validated description of how to run one process (backend,
prompt answers, timeouts, cancel, stdin, output sinks); `ProcessResult` is what comes back.
`Watch` turns the controls into deadlines: how long the lifecycle may wait before something
must be checked, and whether the job must stop now (and why). A timeout is enforced at once,
unless `on_timeout` takes it: then it is reported and the job goes on until the decision
(stop, or keep waiting) arrives through the `Steering` (`process.steering`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from containerrunner.errors import ConfigurationError
from containerrunner.validate import DEFAULT_TERMINATION_GRACE, as_grace

if TYPE_CHECKING:
    from containerrunner.process.steering import Steering

Outcome = Literal["successful", "failed", "canceled", "timeout"]
Mode = Literal["subprocess", "pexpect"]
MODES: tuple[Mode, ...] = ("subprocess", "pexpect")

# How often cancel_callback is called and cancel_event looked at (the public API promises a
# poll of roughly every 0.1-0.25 s). Waits are otherwise computed from deadlines only.
CANCEL_POLL_INTERVAL = 0.2

Sink = Callable[[str], None]
TimeoutKind = Literal["idle", "total"]


@dataclass(frozen=True)
class TimeoutNotice:
    """A timeout that passed: `kind` idle (no output for `limit` s) or total (the job ran for
    `limit` s); `elapsed` is the seconds since the job's clock started; `reason` in words."""

    kind: TimeoutKind
    limit: float
    elapsed: float
    reason: str


@dataclass(frozen=True)
class ProcessControls:
    """How to run one process.

    - `mode`: `subprocess` (pipes; stdout and stderr apart) or `pexpect` (a pty; one merged
      stream, prompts answered from `passwords`).
    - `passwords`: regex -> answer, used in pexpect mode (ignored with pipes, where the child
      has no terminal to prompt on); a regex is searched in the recent output (re.MULTILINE),
      each match answered once with `answer + newline`.
    - `job_timeout`: seconds the whole job may take; `idle_timeout`: seconds without output.
    - `cancel_callback`: polled every `cancel_poll` s (default CANCEL_POLL_INTERVAL); True
      (or an exception) cancels.
    - `cancel_event`: cancels when set (looked at with the same interval).
    - `stdin`: subprocess mode only; None gives the child /dev/null, an int is a file
      descriptor, a file object with a working `fileno()` is connected directly, any other
      file-like object (StringIO, BytesIO) is read and fed to the child by a thread. A
      terminal (an fd for which isatty() is true) is passed through instead: the child runs
      on a pty of its own with that terminal's settings and size (kept in step with it when
      the job runs in the main thread), and what is typed on it is copied to the pty
      (`process.terminal`); stdout and stderr are then one stream.
    - `stdout`, `stderr`: sinks for decoded text chunks (pexpect, and a terminal as stdin: the
      merged stream goes to `stdout`); they run in the calling thread, and an exception in
      one stops the job.
    - `on_start`: called with the pid right after the process started.
    - `before_stop`: called once, in the calling thread, when the job is to be stopped (a
      timeout, a cancel, an exception), before any signal; an exception it raises is logged.
      Without it, a stopped host process and its descendants are looked at instead: the
      Ansible module dirs they made (`tempdirs.module_dirs_of`: remote temp dirs, AnsiballZ payload
      dirs, which a stopped module never removes) are removed once they all ended.
    - `termination_grace`: seconds between SIGTERM and SIGKILL when the job is stopped (for a
      container, the engine's `stop --time`, rounded up to whole seconds).
    - `start_timeout`: seconds the container may take to start (the engine reports it
      started, or it printed something), `start_spent` of them already spent (on the image);
      `job_timeout` and `idle_timeout` then count from the start. Without it (and on the
      host) they count from the spawn.
    - `steering`: stop requests and keep-waiting decisions from other threads; the lifecycle
      blocks on its wake-up fd.
    - `on_timeout`: called (in the lifecycle's thread) with each timeout that passed; when it
      returns True the timeout is only reported, and the job goes on until `steering` brings
      the decision. Without it, or when it returns False, the job stops at once.
    """

    mode: Mode = "subprocess"
    passwords: Mapping[str, str] = field(default_factory=dict)
    job_timeout: float | None = None
    idle_timeout: float | None = None
    cancel_callback: Callable[[], bool] | None = None
    cancel_event: threading.Event | None = None
    cancel_poll: float | None = None
    stdin: int | IO[Any] | None = None
    stdout: Sink | None = None
    stderr: Sink | None = None
    on_start: Callable[[int], None] | None = None
    before_stop: Callable[[], None] | None = None
    termination_grace: float = DEFAULT_TERMINATION_GRACE
    start_timeout: float | None = None
    start_spent: float = 0.0
    steering: Steering | None = None
    on_timeout: Callable[[TimeoutNotice], bool] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(
                f"process mode must be subprocess or pexpect; got {self.mode!r}"
            )
        as_grace(self.termination_grace)
        for name in ("job_timeout", "idle_timeout", "cancel_poll", "start_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds or None; got {value!r}"
                )
        if self.stdin is not None and self.mode != "subprocess":
            raise ConfigurationError(
                "stdin can be given in subprocess mode only; in pexpect mode the child reads "
                "from the pty and prompts are answered from passwords"
            )
        compile_prompts(self.passwords)


@dataclass(frozen=True)
class ProcessResult:
    """How the process ended.

    `rc` is the exit code, negative for a signal (-15: SIGTERM); `outcome` is `successful` iff
    rc == 0 and the job was neither canceled nor timed out; `reason` says why, in words
    ("rc 2", "killed by SIGSEGV", "job timeout after 5s", "canceled by cancel_callback").
    `stopped` says how a stop went: "terminated" (the process ended within the termination
    grace), "killed" (SIGKILL after the grace), "" (it was not stopped).
    """

    rc: int
    outcome: Outcome
    reason: str
    stopped: Literal["", "terminated", "killed"] = ""


def compile_prompts(passwords: Mapping[str, str]) -> list[tuple[re.Pattern[str], str]]:
    """The `passwords` mapping as (compiled regex, answer) pairs; the error names a bad regex."""
    compiled: list[tuple[re.Pattern[str], str]] = []
    for pattern, answer in passwords.items():
        if not isinstance(pattern, str) or not isinstance(answer, str):
            raise ConfigurationError(
                f"passwords must map regex strings to answer strings; got key {pattern!r} "
                f"with a {type(answer).__name__} answer"
            )
        try:
            regex = re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise ConfigurationError(
                f"passwords: {pattern!r} is not a valid regular expression ({exc})"
            ) from exc
        if regex.match("") is not None:
            raise ConfigurationError(
                f"passwords: the pattern {pattern!r} matches the empty string, so it would "
                "answer before any prompt; make it match the prompt text, e.g. r'Password:\\s*$'"
            )
        compiled.append((regex, answer))
    return compiled


def seconds(value: float) -> str:
    return f"{value:g}s"


def start_timeout_reason(limit: float, phase: str, detail: str) -> str:
    """Why a job's start phase timed out, naming the phase (`image`, `container start`)."""
    return f"start timeout after {seconds(limit)} (start phase: {phase}): {detail}"


class Watch:
    """The deadlines of one job: start timeout, job timeout, idle timeout, cancel polls.

    `stop_reason()` says whether the job must stop now; `wait_time()` how long the lifecycle
    may block before it must ask again. Both take the current `time.monotonic()`. With
    `starting`, the job is in its start phase: only the start timeout runs until `started()`,
    and the job and idle timeouts count from then.
    """

    def __init__(self, controls: ProcessControls, now: float, starting: bool = False) -> None:
        self._controls = controls
        self._job_deadline: float | None = None
        self._last_output = now
        self._idle_window = controls.idle_timeout  # keep_waiting(seconds) changes it once
        self._clock_start = now
        self._next_poll = now  # poll cancel_callback at once, then every interval
        self._start_deadline: float | None = None
        self._pending: TimeoutNotice | None = None  # reported, waiting for the decision
        #: seconds between SIGTERM and SIGKILL for the stop that stop_reason() asked for
        self.grace = controls.termination_grace
        if starting and controls.start_timeout is not None:
            self._start_deadline = now + controls.start_timeout - controls.start_spent
        else:
            self.started(now)

    @property
    def starting(self) -> bool:
        """Whether the job is still in its start phase."""
        return self._start_deadline is not None

    def started(self, now: float) -> None:
        """The start phase is over: the job and idle timeouts count from `now`."""
        self._start_deadline = None
        self._clock_start = self._last_output = now
        self._job_limit = self._controls.job_timeout  # keep_waiting() extends it
        self._job_deadline = None if self._job_limit is None else now + self._job_limit

    def saw_output(self, now: float) -> None:
        self._last_output = now
        self._idle_window = self._controls.idle_timeout
        if self._start_deadline is not None:  # output from the container: it has started
            self.started(now)

    def _idle_deadline(self) -> float | None:
        idle = self._idle_window
        if idle is None or self._start_deadline is not None:
            return None
        if self._pending is not None and self._pending.kind == "idle":
            return None
        return self._last_output + idle

    def _total_deadline(self) -> float | None:
        if self._pending is not None and self._pending.kind == "total":
            return None
        return self._job_deadline

    def _passed(self, now: float) -> TimeoutNotice | None:
        elapsed = now - self._clock_start
        deadline = self._total_deadline()
        if deadline is not None and now >= deadline:
            assert self._job_limit is not None
            limit = self._job_limit
            return TimeoutNotice("total", limit, elapsed, f"job timeout after {seconds(limit)}")
        deadline = self._idle_deadline()
        if deadline is not None and now >= deadline:
            assert self._idle_window is not None
            limit = self._idle_window
            return TimeoutNotice(
                "idle", limit, elapsed, f"idle timeout: no output for {seconds(limit)}"
            )
        return None

    def _keep_waiting(self, now: float, more: float | None) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if pending.kind == "total":
            assert self._controls.job_timeout is not None
            self._job_deadline = now + (more if more is not None else self._controls.job_timeout)
            self._job_limit = self._job_deadline - self._clock_start
        else:
            # the next idle timeout comes after `more` s without output (default: one period)
            self._last_output = now
            self._idle_window = more if more is not None else self._controls.idle_timeout

    def stop_reason(self, now: float) -> tuple[Outcome, str] | None:
        controls = self._controls
        steering = controls.steering
        if steering is not None:
            for more in steering.take_keep_waiting():
                self._keep_waiting(now, more)
            request = steering.stop_request
            if request is not None:
                if request.grace is not None:
                    self.grace = request.grace
                return request.outcome, request.reason
        if self._start_deadline is not None and now >= self._start_deadline:
            assert controls.start_timeout is not None
            return "timeout", start_timeout_reason(
                controls.start_timeout, "container start", "the container did not start"
            )
        if self._pending is None and (notice := self._passed(now)) is not None:
            if controls.on_timeout is None or not controls.on_timeout(notice):
                return "timeout", notice.reason
            self._pending = notice
        if controls.cancel_event is not None and controls.cancel_event.is_set():
            return "canceled", "canceled by cancel_event"
        if controls.cancel_callback is not None and now >= self._next_poll:
            self._next_poll = now + (controls.cancel_poll or CANCEL_POLL_INTERVAL)
            try:
                if controls.cancel_callback():
                    return "canceled", "canceled by cancel_callback"
            except Exception as exc:
                return "canceled", f"canceled: cancel_callback raised {type(exc).__name__}: {exc}"
        return None

    def wait_time(self, now: float) -> float | None:
        """Seconds until the next deadline or poll (None: nothing to wait for but the process
        and, with a steering, its wake-up fd)."""
        candidates: list[float] = []
        for deadline in (self._start_deadline, self._total_deadline(), self._idle_deadline()):
            if deadline is not None:
                candidates.append(deadline)
        if self._controls.cancel_callback is not None:
            candidates.append(self._next_poll)
        if self._controls.cancel_event is not None and self._controls.steering is None:
            candidates.append(now + CANCEL_POLL_INTERVAL)
        if not candidates:
            return None
        return max(0.0, min(candidates) - now)
