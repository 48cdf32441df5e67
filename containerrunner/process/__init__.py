"""Process backends of one lifecycle: pipes, a pty, or the caller's terminal passed through
on a pty; timeouts, cancel, cleanup.

`run_process(invocation, controls)` runs what `isolation.containerize` built (a command on the
host, or `<engine> run ...`) and returns a `ProcessResult`. Output goes to the sinks in
`ProcessControls` as decoded text; this package keeps none of it.
"""

from __future__ import annotations

from containerrunner.process.controls import (
    CANCEL_POLL_INTERVAL,
    Outcome,
    ProcessControls,
    ProcessResult,
)
from containerrunner.process.lifecycle import run_process

__all__ = [
    "CANCEL_POLL_INTERVAL",
    "Outcome",
    "ProcessControls",
    "ProcessResult",
    "run_process",
]
