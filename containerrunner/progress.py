"""Progress of a running job, from its events: `progress_handler(Progress)`.

`total` is the task x host results expected so far: it grows as tasks start on hosts
(`runner_on_start`), and a result that came without one counts too, so `completed <= total`
always holds. `completed` counts results (ok, changed, failed, skipped, unreachable), `failed`
the failed (not ignored) and unreachable ones, as they happen (a failure a `rescue` section
catches later counts too). `play`, `task` and `running` (hosts that started
the current task and have no result yet) say where the job is. The CLI's live view draws its
progress bar from this same object.

`PullProgress` is what `pull_progress_handler(PullProgress)` gets while the job's image is
pulled, before the job starts (a separate handler: `progress_handler` keeps getting only
`Progress`, so handlers written for it, and run_group's aggregation, never see another type).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from containerrunner.events import RESULT_EVENTS as _RESULTS
from containerrunner.events import TASK_START_EVENTS as _TASK_STARTS

__all__ = ["Progress", "ProgressTracker", "PullProgress"]


@dataclass(frozen=True)
class Progress:
    total: int
    completed: int
    failed: int
    play: str
    task: str
    running: tuple[str, ...]
    elapsed: float

    @property
    def fraction(self) -> float:
        """completed / total (0.0 before anything is expected)."""
        return self.completed / self.total if self.total else 0.0


@dataclass(frozen=True)
class PullProgress:
    """One step of pulling `image`, as the engine reports it.

    `status` is the engine's own words ("Downloading", "Copying blob sha256:...", "Pull
    complete"); `layer` the layer (docker: its short ID) or blob digest (podman) the step is
    about, "" when none; `current`/`total` bytes of that layer where the engine reports them
    (the docker API's download and extract steps; None otherwise: podman 4's API and both
    CLIs report no byte counts). `done` is True on the last item of a pull that succeeded
    (a failed pull raises instead). `via` says what reported it ("the docker API", "the
    podman API", "the CLI"); `elapsed` is seconds since the pull began.
    """

    image: str
    status: str
    layer: str = ""
    current: int | None = None
    total: int | None = None
    done: bool = False
    via: str = ""
    elapsed: float = 0.0

    @property
    def fraction(self) -> float | None:
        """current / total of the layer, when the engine reported both."""
        if self.current is None or not self.total:
            return None
        return min(1.0, self.current / self.total)


class ProgressTracker:
    """Takes events (`add` returns True when the progress changed); `snapshot()` any time."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._total = 0
        self._completed = 0
        self._failed = 0
        self._play = ""
        self._task = ""
        self._task_uuid = ""
        self._pending: dict[tuple[str, str], None] = {}  # (task uuid, host) started, no result
        self._lock = threading.Lock()

    def add(self, event: Mapping[str, Any]) -> bool:
        name = event.get("event")
        data = event.get("event_data")
        data = data if isinstance(data, Mapping) else {}
        with self._lock:
            if name == "playbook_on_play_start":
                self._play = str(data.get("play") or data.get("name") or "")
                self._task, self._task_uuid = "", ""
            elif name in _TASK_STARTS:
                self._task = str(data.get("task") or data.get("name") or "")
                self._task_uuid = str(data.get("task_uuid") or event.get("uuid") or "")
            elif name == "runner_on_start":
                self._total += 1
                self._pending[self._key(data)] = None
            elif name in _RESULTS:
                key = self._key(data)
                if key in self._pending:
                    del self._pending[key]
                else:
                    self._total += 1  # a result with no start seen: expected now
                self._completed += 1
                failed = name in ("runner_on_failed", "runner_on_async_failed")
                if name == "runner_on_unreachable" or (failed and not data.get("ignore_errors")):
                    self._failed += 1
            else:
                return False
            return True

    def _key(self, data: Mapping[str, Any]) -> tuple[str, str]:
        return str(data.get("task_uuid") or self._task_uuid), str(data.get("host", ""))

    def snapshot(self) -> Progress:
        with self._lock:
            return Progress(
                total=max(self._total, self._completed),
                completed=self._completed,
                failed=self._failed,
                play=self._play,
                task=self._task,
                running=tuple(h for t, h in self._pending if t == self._task_uuid),
                elapsed=time.monotonic() - self._started,
            )
