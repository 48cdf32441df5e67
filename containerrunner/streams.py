"""Typed streams over a running job: one `for` loop over everything that happens.

```python
with containerrunner.stream(playbook="site.yml", private_data_dir=pdd, idle_timeout=30) as s:
    for item in s:
        match item:
            case Event(): ...                  # one Ansible event (item.data is the dict)
            case Output(stream="stderr"): ...  # a chunk of the job's output, as bytes
            case Status(): ...                 # starting, running, then the final status
            case IdleTimeout() | TotalTimeout():
                s.terminate(grace=10)          # or s.kill(), or s.keep_waiting()
            case Exited(rc=rc, status=status): ...  # always the last item
```

`stream()` takes the keyword arguments of `run()`, or, with `executable_cmd` (and
`cmdline_args`), those of `run_command()`. The job runs in a thread of its own; its handlers
feed one queue and the loop blocks on it (no polling).

A timeout that passes (`idle_timeout`, `timeout`) is not enforced at once: it arrives as an
item, and the caller decides before asking for the next item: `terminate(grace=...)` (SIGTERM,
SIGKILL after the grace; a container gets `<engine> stop --time grace`, then `rm`), `kill()`,
or `keep_waiting(seconds=None)` (another period of that timeout, or `seconds`). Asking for the
next item without deciding applies the job's own policy: it stops as `timeout` with its
termination grace. Leaving the `with` block while the job runs stops it the same way
(`canceled`, or `timeout` when a timeout was pending).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from containerrunner.errors import ConfigurationError
from containerrunner.interface import command_runner, observe, run_runner
from containerrunner.process.controls import TimeoutNotice
from containerrunner.process.steering import StopRequest
from containerrunner.runner import Runner
from containerrunner.validate import as_grace


@dataclass(frozen=True)
class Event:
    """One event of the job (ansible-runner's event dict, numbered: `counter`, `uuid`)."""

    data: dict[str, Any]

    @property
    def name(self) -> str:
        """The event type: `playbook_on_task_start`, `runner_on_ok`, `verbose`, ..."""
        return str(self.data.get("event", ""))


@dataclass(frozen=True)
class Output:
    """A chunk of the job's output on `stream` (stderr is merged into stdout under a pty)."""

    stream: Literal["stdout", "stderr"]
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Status:
    """The job's status changed (`starting`, `running`, then the final one); `data` is what
    status_handler gets."""

    status: str
    data: dict[str, Any]


@dataclass(frozen=True)
class IdleTimeout:
    """No output for `seconds`; `elapsed` seconds since the job's clock started."""

    seconds: float
    elapsed: float
    reason: str


@dataclass(frozen=True)
class TotalTimeout:
    """The job ran for `seconds` (its `timeout`, or as far as keep_waiting extended it)."""

    seconds: float
    elapsed: float
    reason: str


@dataclass(frozen=True)
class Exited:
    """The job ended (always the last item): `rc` and `status` as Runner has them (254 for
    canceled and timeout), `reason` in words, `stopped` how a stop went: "terminated" within
    the grace, "killed" after it, "" when the job was not stopped."""

    rc: int | None
    status: str
    reason: str
    stopped: str


Item = Event | Output | Status | IdleTimeout | TotalTimeout | Exited
Timeout = IdleTimeout | TotalTimeout


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class JobStream:
    """The typed items of one job; see the module docstring. Iterate it once."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._items: queue.SimpleQueue[Item | _End] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending: Timeout | None = None  # delivered to the caller, not decided yet
        self._thread: threading.Thread | None = None
        self._ended = False
        self._tap(runner)

    def _tap(self, runner: Runner) -> None:
        put = self._items.put
        event_handler = runner.event_handler
        status_handler = runner.status_handler

        def on_event(event: dict[str, Any]) -> Any:
            put(Event(event))
            return True if event_handler is None else event_handler(event)

        def on_status(data: dict[str, Any], config: Any) -> Any:
            put(Status(str(data.get("status", "")), data))
            return None if status_handler is None else status_handler(data, config)

        def on_output(stream: str, text: str) -> None:
            put(Output("stderr" if stream == "stderr" else "stdout", text.encode("utf-8")))

        def on_timeout(notice: TimeoutNotice) -> bool:
            kind = IdleTimeout if notice.kind == "idle" else TotalTimeout
            put(kind(notice.limit, notice.elapsed, notice.reason))
            return True

        runner.event_handler = on_event
        runner.status_handler = on_status
        runner.output_handler = on_output
        runner.timeout_handler = on_timeout

    # ------------------------------------------------------------------ the loop
    def start(self) -> JobStream:
        """Start the job (entering the `with` block does it)."""
        if self._thread is None:
            self._thread = self.runner.start(on_end=self._finished)
        return self

    def _finished(self, error: BaseException | None) -> None:
        runner = self.runner
        if error is None:
            self._items.put(Exited(runner.rc, runner.status, runner.reason, runner.stopped))
        self._items.put(_End(error))

    def __enter__(self) -> JobStream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(kill=isinstance(exc, KeyboardInterrupt))

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        if self._ended:
            raise StopIteration
        self.start()
        self._apply_policy()
        item = self._items.get()
        if isinstance(item, _End):
            self._ended = True
            if item.error is not None:
                raise item.error
            raise StopIteration
        if isinstance(item, IdleTimeout | TotalTimeout):
            with self._lock:
                self._pending = item
        return item

    def _apply_policy(self) -> None:
        """A timeout delivered without a decision: the job's own policy, a stop as timeout."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.runner.steering.stop(StopRequest("timeout", pending.reason))

    # ------------------------------------------------------------------ decisions
    def terminate(self, grace: float | None = None) -> None:
        """Stop the job: SIGTERM, SIGKILL after `grace` s (default: its termination_grace).
        Status `timeout` when a timeout is pending, else `canceled`."""
        checked = None if grace is None else as_grace(grace, "grace")
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            self.runner.terminate(checked)
        else:
            self.runner.steering.stop(StopRequest("timeout", pending.reason, checked))

    def kill(self) -> None:
        """Stop the job at once: SIGKILL (a container removed with `rm --force`)."""
        self.terminate(grace=0)

    def keep_waiting(self, seconds: float | None = None) -> None:
        """After an IdleTimeout or TotalTimeout: let the job go on; that timeout comes again
        after `seconds` (default: another period of it)."""
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
        ):
            raise ConfigurationError(
                f"keep_waiting(seconds=...) must be a positive number, not {seconds!r}"
            )
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError("keep_waiting(): no IdleTimeout or TotalTimeout is pending")
        self.runner.steering.keep_waiting(seconds)

    def close(self, kill: bool = False) -> None:
        """Stop the job if it still runs (a pending timeout: as `timeout`, else `canceled`;
        with `kill`, or when the block is left by Ctrl-C, without grace) and wait for its
        end; the items not read are dropped."""
        if self._thread is None:
            return
        self._apply_policy()
        if self._thread.is_alive():
            self.runner.terminate(grace=0 if kill else None)
        while not self._ended:
            item = self._items.get()
            if isinstance(item, _End):
                self._ended = True
        self._thread.join()


def stream(
    executable_cmd: str | None = None,
    cmdline_args: Sequence[str] | None = None,
    **kwargs: Any,
) -> JobStream:
    """A typed stream over a job: run()'s keyword arguments, or run_command()'s with
    `executable_cmd`; see containerrunner.streams. Output is not echoed (`quiet=True`)
    unless `quiet=False` is given. Use it as a context manager."""
    kwargs.setdefault("quiet", True)
    if executable_cmd is None:
        if cmdline_args is not None:
            raise ConfigurationError("stream(): cmdline_args needs executable_cmd")
        observe("stream", None, (), kwargs)
        return JobStream(run_runner(kwargs))
    observe("stream", None, (), {"executable_cmd": executable_cmd, **kwargs})
    return JobStream(command_runner(executable_cmd, cmdline_args, kwargs, "stream"))
