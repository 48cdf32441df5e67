"""`process`: rebuild a job's artifacts on the caller's side from a worker's stream.

It reads what a worker writes (status lines, events, the artifacts dir's zip, eof), writes each
event to `<artifact_dir>/job_events/<counter>-<uuid>.json` unless `event_handler` returns a
false value, unpacks the artifacts, and calls the handlers of a local run (status, event,
artifacts, finished). The artifacts dir is ansible-runner's: `artifact_dir` if given, else
`<private_data_dir>/artifacts/<ident>` (or `<private_data_dir>/artifacts` without an ident).

A stream that ends early, is corrupt or too large, or whose sender stays silent longer than
`idle_timeout`, ends the job with status `error`: `status_handler` gets an `error` line whose
`job_explanation` says what was wrong, and `process` returns that result (it raises nothing for
a bad stream). `cancel_callback` is asked after each item; when it returns True the stream is
left (status `canceled`), which makes a containerrunner worker writing it cancel its job.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from containerrunner.errors import StreamError
from containerrunner.events import stats_from_events
from containerrunner.streaming import archive, wire
from containerrunner.streaming.idle import reader_for

log = logging.getLogger(__name__)

_SAFE_UUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass
class StreamConfig:
    """What `status_handler` gets as its runner config: the job's command and cwd, from the
    `starting` line (and env only if the sender put it there; a containerrunner worker never
    does)."""

    command: list[str] | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None


@dataclass
class ProcessResult:
    """How the streamed job ended, and where its artifacts are."""

    status: str
    rc: int | None
    artifact_dir: str
    ident: str | None = None
    job_explanation: str | None = None
    config: StreamConfig = field(default_factory=StreamConfig)

    @property
    def events(self) -> Iterator[dict[str, Any]]:
        """The job_events files kept, in counter order."""
        folder = Path(self.artifact_dir, "job_events")
        files = sorted(folder.glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
        for path in files:
            yield json.loads(path.read_text())

    @property
    def stats(self) -> dict[str, Any] | None:
        """The play recap as Runner.stats gives it (None: no playbook_on_stats event)."""
        return stats_from_events(self.events)


def artifact_dir_for(
    private_data_dir: str | None, artifact_dir: str | None, ident: str | None
) -> str:
    """ansible-runner's choice of the artifacts dir for a processed stream."""
    if artifact_dir:
        return os.path.abspath(artifact_dir)
    base = private_data_dir if private_data_dir is not None else tempfile.mkdtemp()
    project = os.path.abspath(os.path.join(base, "artifacts"))
    return os.path.join(project, str(ident)) if ident else project


class _Processor:
    def __init__(self, result: ProcessResult, handlers: dict[str, Any], quiet: bool) -> None:
        self.result = result
        self.handlers = handlers
        self.quiet = quiet
        self.events_dir = Path(result.artifact_dir, "job_events")

    def status(self, data: dict[str, Any]) -> None:
        self.result.status = str(data.get("status"))
        if data.get("status") == "starting":
            config = self.result.config
            config.command, config.cwd, config.env = (
                data.get("command"), data.get("cwd"), data.get("env"),
            )  # fmt: skip
        if data.get("job_explanation"):
            self.result.job_explanation = str(data["job_explanation"])
        handler = self.handlers.get("status_handler")
        if handler is not None:
            handler(data, self.result.config)

    def event(self, data: dict[str, Any]) -> None:
        if data.get("event") == "keepalive":
            return
        counter, uuid = data.get("counter"), data.get("uuid")
        if not isinstance(counter, int) or isinstance(counter, bool) or counter < 0:
            log.warning("job stream event without a valid counter skipped: %.200r", data)
            return
        if not isinstance(uuid, str) or not _SAFE_UUID.match(uuid):
            log.warning("job stream event %d without a valid uuid skipped", counter)
            return
        if not self.quiet and "stdout" in data:
            print(data["stdout"], flush=True)
        handler = self.handlers.get("event_handler")
        keep = True if handler is None else handler(data)
        if keep:
            path = self.events_dir / f"{counter}-{uuid}.json"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                json.dump(data, out)

    def artifacts(self, payload: bytes) -> None:
        archive.unzip_into(payload, self.result.artifact_dir)
        rc_file = Path(self.result.artifact_dir, "rc")
        if rc_file.is_file():
            try:
                self.result.rc = int(rc_file.read_text().strip())
            except ValueError:
                log.warning("artifacts rc file is not a number: %s", rc_file)
        handler = self.handlers.get("artifacts_handler")
        if handler is not None:
            handler(self.result.artifact_dir)


def process(
    input: IO[bytes],
    *,
    private_data_dir: str | None = None,
    artifact_dir: str | None = None,
    ident: str | None = None,
    status_handler: Callable[[dict[str, Any], Any], Any] | None = None,
    event_handler: Callable[[dict[str, Any]], Any] | None = None,
    artifacts_handler: Callable[[str], Any] | None = None,
    cancel_callback: Callable[[], bool] | None = None,
    finished_callback: Callable[[ProcessResult], Any] | None = None,
    quiet: bool = False,
    max_payload: int = wire.DEFAULT_MAX_PAYLOAD,
    idle_timeout: float | None = None,
) -> ProcessResult:
    """Read the worker stream `input` to its end; returns the job's result.

    As ansible-runner's process, each event's `stdout` is printed unless `quiet`.
    """
    where = artifact_dir_for(private_data_dir, artifact_dir, ident)
    result = ProcessResult("unstarted", None, where, ident)
    handlers = {
        "status_handler": status_handler,
        "event_handler": event_handler,
        "artifacts_handler": artifacts_handler,
    }
    processor = _Processor(result, handlers, quiet)
    processor.events_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        for item in wire.read_items(reader_for(input, idle_timeout), max_payload):
            if item.kind == "status":
                processor.status(item.data)
            elif item.kind == "event":
                processor.event(item.data)
            elif item.kind == "zipfile":
                processor.artifacts(item.payload)
            elif item.kind == "kwargs":
                raise StreamError(
                    "job stream holds a kwargs line: it is what `transmit` writes, give it to "
                    "a worker first"
                )
            if cancel_callback is not None and cancel_callback():
                processor.status({"status": "canceled", "job_explanation": "canceled by caller"})
                break
    except StreamError as exc:
        processor.status({"status": "error", "job_explanation": str(exc)})
    if finished_callback is not None:
        finished_callback(result)
    return result
