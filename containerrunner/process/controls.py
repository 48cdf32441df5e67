"""What the caller controls about a running process, what comes back, and the deadlines.

`ProcessControls` is the frozen, validated description of how to run one process (backend,
prompt answers, timeouts, cancel, stdin, output sinks); `ProcessResult` is what comes back.
`Watch` turns the controls into deadlines: how long the lifecycle may wait before something
must be checked, and whether the job must stop now (and why).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from containerrunner.errors import ConfigurationError

Outcome = Literal["successful", "failed", "canceled", "timeout"]
Mode = Literal["subprocess", "pexpect"]
MODES: tuple[Mode, ...] = ("subprocess", "pexpect")

# How often cancel_callback is called and cancel_event looked at (the public API promises a
# poll of roughly every 0.1-0.25 s). Waits are otherwise computed from deadlines only.
CANCEL_POLL_INTERVAL = 0.2

Sink = Callable[[str], None]


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

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(
                f"process mode must be subprocess or pexpect; got {self.mode!r}"
            )
        for name in ("job_timeout", "idle_timeout", "cancel_poll"):
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
    """

    rc: int
    outcome: Outcome
    reason: str


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


class Watch:
    """The deadlines of one job: job timeout, idle timeout, cancel polls.

    `stop_reason()` says whether the job must stop now; `wait_time()` how long the lifecycle
    may block before it must ask again. Both take the current `time.monotonic()`.
    """

    def __init__(self, controls: ProcessControls, now: float) -> None:
        self._controls = controls
        self._job_deadline = None if controls.job_timeout is None else now + controls.job_timeout
        self._last_output = now
        self._next_poll = now  # poll cancel_callback at once, then every interval

    def saw_output(self, now: float) -> None:
        self._last_output = now

    def _idle_deadline(self) -> float | None:
        idle = self._controls.idle_timeout
        return None if idle is None else self._last_output + idle

    def stop_reason(self, now: float) -> tuple[Outcome, str] | None:
        controls = self._controls
        if self._job_deadline is not None and now >= self._job_deadline:
            assert controls.job_timeout is not None
            return "timeout", f"job timeout after {seconds(controls.job_timeout)}"
        idle_deadline = self._idle_deadline()
        if idle_deadline is not None and now >= idle_deadline:
            assert controls.idle_timeout is not None
            return "timeout", f"idle timeout: no output for {seconds(controls.idle_timeout)}"
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
        """Seconds until the next deadline or poll (None: nothing to wait for but the process)."""
        candidates: list[float] = []
        if self._job_deadline is not None:
            candidates.append(self._job_deadline)
        idle_deadline = self._idle_deadline()
        if idle_deadline is not None:
            candidates.append(idle_deadline)
        if self._controls.cancel_callback is not None:
            candidates.append(self._next_poll)
        if self._controls.cancel_event is not None:
            candidates.append(now + CANCEL_POLL_INTERVAL)
        if not candidates:
            return None
        return max(0.0, min(candidates) - now)
