"""Image pull progress: the engines' pull streams read into `PullProgress` items.

- the docker API (`/images/create`, the SDK's `pull(..., stream=True, decode=True)`): one
  JSON object per step, `{"status", "id" (the layer), "progressDetail": {"current",
  "total"}}`; a failure is an `{"error": ...}` object inside a 200 stream.
- the podman API (libpod `/images/pull`, podman 4.3): `{"stream": "<a line of podman's
  pull output>"}` objects, then `{"images": [...], "id": ...}` on success or `{"error": ...}`.
  No byte counts: podman 4's API sends none (its `compatMode` arrived in podman 5).
- the CLI (`<engine> pull` without a TTY): its output lines, e.g. docker's
  `cc0689e332ab: Pull complete`, podman's `Copying blob sha256:...`.

Each reader returns the item for one piece of the stream (None for one that says nothing)
and raises PullStreamError for an error object.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from containerrunner.progress import PullProgress

PullListener = Callable[[PullProgress], Any]

_DOCKER_CLI_LAYER = re.compile(r"^([0-9a-f]{12}): (.+)$")
_PODMAN_BLOB = re.compile(r"^Copying (?:blob|config) (?:sha256:)?([0-9a-f]{12,64})\b")


class PullStreamError(Exception):
    """An error object in a pull stream: the engine's message."""


class PullReader:
    """Turns one pull's stream pieces into PullProgress items for `image` via `via`."""

    def __init__(self, image: str, via: str) -> None:
        self.image = image
        self.via = via
        self.started = time.monotonic()
        self.last_status = ""

    def item(
        self,
        status: str,
        layer: str = "",
        current: int | None = None,
        total: int | None = None,
        done: bool = False,
    ) -> PullProgress:
        self.last_status = status
        return PullProgress(
            image=self.image,
            status=status,
            layer=layer,
            current=current,
            total=total,
            done=done,
            via=self.via,
            elapsed=time.monotonic() - self.started,
        )

    def done(self, status: str = "") -> PullProgress:
        """The final item of a pull that succeeded."""
        return self.item(status or self.last_status or "pulled", done=True)

    def docker(self, piece: Mapping[str, Any]) -> PullProgress | None:
        if piece.get("error"):
            raise PullStreamError(str(piece["error"]))
        status = str(piece.get("status") or "")
        if not status:
            return None
        detail = piece.get("progressDetail")
        detail = detail if isinstance(detail, Mapping) else {}
        return self.item(
            status,
            layer=str(piece.get("id") or ""),
            current=_int(detail.get("current")),
            total=_int(detail.get("total")),
        )

    def podman(self, piece: Mapping[str, Any]) -> PullProgress | None:
        if piece.get("error"):
            raise PullStreamError(str(piece["error"]))
        if piece.get("id"):
            return self.done(f"pulled {piece['id']}")
        line = str(piece.get("stream") or "").strip()
        return self.line(line) if line else None

    def line(self, line: str) -> PullProgress | None:
        """A line of `<engine> pull` output (the CLI; the podman API's `stream` text)."""
        line = line.strip()
        if not line:
            return None
        layer = _DOCKER_CLI_LAYER.match(line)
        if layer is not None:
            return self.item(layer.group(2), layer=layer.group(1))
        blob = _PODMAN_BLOB.match(line)
        return self.item(line, layer=blob.group(1) if blob is not None else "")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
