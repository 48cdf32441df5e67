"""`worker`: run the job a stream carries and stream back what happened.

It reads `transmit`'s stream (the keyword arguments, the private data dir's zip, eof), runs
`containerrunner.run()` on the unpacked private data dir, and writes status lines, events, the
artifacts dir's zip and the eof line, in ansible-runner 2.4.3's format, so either end can be
ansible-runner. Unlike ansible-runner's worker: the `starting` status line carries no
environment (ansible-runner's carries every variable of the job, secrets included), `None`
options a sender fills in for completeness are ignored, `artifact_dir` (a path on the caller's
machine) is ignored, a private data dir the worker made is removed at the end, and the job is
canceled when the reader of its output goes away.

A stream it cannot use ends in one `error` status line (its `job_explanation` says why) and the
eof line; `worker` then returns status `error` and raises nothing.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from containerrunner import tempdirs
from containerrunner.errors import ContainerRunnerError, StreamError
from containerrunner.interface import run
from containerrunner.streaming import archive, wire
from containerrunner.streaming.idle import reader_for
from containerrunner.streaming.transmit import job_side


@dataclass(frozen=True)
class WorkerResult:
    """How the worker's job ended: its status and rc (None where it never ran)."""

    status: str
    rc: int | None
    ident: str | None = None
    job_explanation: str | None = None


class _Output:
    """The worker's stream out: one writer at a time; a reader gone shows as `closed`."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.broken = False
        self.ended = False

    def send(self, write: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self.broken or self.ended:
                return
            try:
                write(self._out, *args)
                self._out.flush()
            except (BrokenPipeError, ConnectionError, ValueError, OSError):
                self.broken = True

    def end(self) -> None:
        self.send(wire.write_eof)
        self.ended = True

    def closed(self) -> bool:
        """Whether the reader went away (a write failed, or the pipe reports it hung up)."""
        if self.broken:
            return True
        try:
            fd = self._out.fileno()
        except (OSError, ValueError, AttributeError):
            return False
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def read_job(
    stream: IO[bytes],
    max_payload: int = wire.DEFAULT_MAX_PAYLOAD,
    idle_timeout: float | None = None,
) -> tuple[dict[str, Any], bytes | None]:
    """The (keyword arguments, private data dir zip) of a transmit stream."""
    kwargs: dict[str, Any] | None = None
    payload: bytes | None = None
    for item in wire.read_items(reader_for(stream, idle_timeout), max_payload):
        if item.kind == "kwargs":
            if not isinstance(item.data["kwargs"], dict):
                raise StreamError("job stream's kwargs line does not hold a JSON object")
            kwargs = item.data["kwargs"]
        elif item.kind == "zipfile":
            payload = item.payload
        elif item.kind != "eof":
            raise StreamError(
                f"job stream to a worker holds a {item.kind} line: it is a worker's output "
                "(give a worker what `transmit` writes)"
            )
    if kwargs is None:
        raise StreamError("job stream has no kwargs line: it is not what `transmit` writes")
    return kwargs, payload


def _run_kwargs(kwargs: dict[str, Any], workdir: str) -> dict[str, Any]:
    """run()'s keyword arguments from the stream's, for a private data dir at `workdir`."""
    job = job_side(kwargs)
    inventory = job.get("inventory")
    if isinstance(inventory, str) and not os.path.isabs(inventory):
        job["inventory"] = os.path.join(workdir, inventory)  # as ansible-runner's worker does
    job.pop("json_mode", None)  # the stream is the output: nothing else may print
    job["quiet"] = True
    job["private_data_dir"] = workdir
    return job


def _handlers(out: _Output, cancel: Callable[[], bool] | None) -> dict[str, Any]:
    def on_status(data: dict[str, Any], config: Any) -> None:
        out.send(wire.write_line, {k: v for k, v in data.items() if k != "env"})

    def on_event(event: dict[str, Any]) -> bool:
        out.send(wire.write_line, event)
        return False  # the event travels as its line; the worker keeps no job_events files

    def on_artifacts(artifact_dir: str) -> None:
        out.send(wire.write_zip, archive.zip_dir(artifact_dir))

    return {
        "status_handler": on_status,
        "event_handler": on_event,
        "artifacts_handler": on_artifacts,
        "finished_callback": lambda runner: out.end(),
        "cancel_callback": lambda: out.closed() or (cancel is not None and bool(cancel())),
    }


def _refused(out: _Output, explanation: str, ident: str | None) -> WorkerResult:
    line: dict[str, Any] = {"status": "error", "job_explanation": explanation}
    if ident is not None:
        line["runner_ident"] = ident
    out.send(wire.write_line, line)
    out.end()
    return WorkerResult("error", None, ident, explanation)


def worker(
    input: IO[bytes],
    output: IO[bytes],
    *,
    private_data_dir: str | None = None,
    max_payload: int = wire.DEFAULT_MAX_PAYLOAD,
    idle_timeout: float | None = None,
    cancel_callback: Callable[[], bool] | None = None,
) -> WorkerResult:
    """Run the job in the stream `input`, writing its stream to `output`.

    `private_data_dir`: where the job's files are unpacked (kept afterwards); by default a
    temporary dir, removed at the end. `idle_timeout`: seconds the sender may stay silent
    before the stream counts as lost. The job is canceled when `cancel_callback` returns True
    or the reader of `output` goes away.
    """
    out = _Output(output)
    try:
        kwargs, payload = read_job(input, max_payload, idle_timeout)
    except StreamError as exc:
        return _refused(out, str(exc), None)
    ident = str(kwargs["ident"]) if kwargs.get("ident") is not None else None
    # a dir of its own, with an owner record: when the worker is killed, the next job's
    # reaper removes it (tempdirs.reap_stale)
    made = tempdirs.make_dir(tempdirs.fresh_path("worker")) if private_data_dir is None else None
    workdir = private_data_dir or os.path.join(str(made), "data")
    try:
        if payload is not None:
            archive.unzip_into(payload, workdir)
        runner = run(**_run_kwargs(kwargs, workdir), **_handlers(out, cancel_callback))
    except ContainerRunnerError as exc:
        return _refused(out, f"{type(exc).__name__}: {exc}", ident)
    finally:
        if made is not None:
            tempdirs.remove_dir(made)
    out.end()  # when the run ended before its finished_callback
    return WorkerResult(runner.status, runner.rc, ident)
