"""The transmit / worker / process job stream, in ansible-runner 2.4.3's wire format.

`transmit(output, **run_kwargs)` writes a job; `worker(input, output)` runs it where it lands
and streams back what happened; `process(input, ...)` rebuilds the artifacts on the caller's
side and calls the handlers of a local run. See docs/streaming.md.
"""

from containerrunner.streaming.process import ProcessResult, StreamConfig, process
from containerrunner.streaming.transmit import transmit
from containerrunner.streaming.worker import WorkerResult, worker

__all__ = ["ProcessResult", "StreamConfig", "WorkerResult", "process", "transmit", "worker"]
