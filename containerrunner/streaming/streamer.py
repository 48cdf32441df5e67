"""`run(streamer=...)`: ansible-runner's way into the job stream from run() itself.

AWX-style callers write `run(streamer="transmit", _output=f, **job)`, then
`run(streamer="worker", _input=f, _output=g)` where the job lands, and
`run(streamer="process", _input=g, private_data_dir=..., event_handler=...)` back home. As in
ansible-runner 2.4.3, transmit returns status `unstarted` (rc None), worker the job's status and
rc, process the status and rc the stream reported. `process` takes the job's run() keyword
arguments too (a caller passes the same dict to all three) and uses only those it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from containerrunner.config.run import reject_unknown
from containerrunner.errors import ConfigurationError
from containerrunner.streaming.process import ProcessResult, process
from containerrunner.streaming.transmit import transmit
from containerrunner.streaming.worker import WorkerResult, worker

STREAMERS = ("transmit", "worker", "process")

#: run() keyword arguments `process` uses; the others describe the job, which already ran
_PROCESS_KWARGS = (
    "private_data_dir",
    "artifact_dir",
    "ident",
    "status_handler",
    "event_handler",
    "artifacts_handler",
    "cancel_callback",
    "finished_callback",
    "quiet",
)


@dataclass(frozen=True)
class Transmitted:
    """What `run(streamer="transmit")` gives: the job is written, not started."""

    ident: str
    status: str = "unstarted"
    rc: int | None = None


def _stream(kwargs: dict[str, Any], name: str, mode: str) -> IO[bytes]:
    stream = kwargs.pop(name, None)
    wanted = "read" if mode == "r" else "write"
    if stream is None or not callable(getattr(stream, wanted, None)):
        raise ConfigurationError(
            f"run(streamer={kwargs['streamer']!r}) needs {name}=, a binary file object to "
            f"{wanted} the job stream {'from' if mode == 'r' else 'to'}; got {stream!r}"
        )
    return stream  # type: ignore[no-any-return]


def run_streamer(kwargs: dict[str, Any]) -> Transmitted | WorkerResult | ProcessResult:
    """Run the `streamer` phase that run()'s keyword arguments ask for."""
    kwargs = dict(kwargs)
    streamer = kwargs.get("streamer")
    if streamer not in STREAMERS:
        raise ConfigurationError(
            f"streamer must be one of {', '.join(STREAMERS)}; got {streamer!r}"
        )
    if streamer == "transmit":
        output = _stream(kwargs, "_output", "w")
        del kwargs["streamer"]
        return Transmitted(transmit(output, **kwargs))
    if streamer == "worker":
        source, output = _stream(kwargs, "_input", "r"), _stream(kwargs, "_output", "w")
        del kwargs["streamer"]
        extra = sorted(set(kwargs) - {"private_data_dir"})
        if extra:  # the job comes in the stream: anything else given here would be lost
            raise ConfigurationError(
                f"run(streamer='worker') takes the job from _input; got {', '.join(extra)} "
                "(give them to the transmit side)"
            )
        return worker(source, output, private_data_dir=kwargs.get("private_data_dir"))
    source = _stream(kwargs, "_input", "r")
    del kwargs["streamer"]
    reject_unknown(kwargs)
    return process(source, **{k: kwargs[k] for k in _PROCESS_KWARGS if k in kwargs})
