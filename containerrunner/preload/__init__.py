"""The warm session's preloader (preloader.py), run in the session's container with the
image's python3; nothing here is imported on the host but these paths."""

from __future__ import annotations

from pathlib import Path

#: mounted read-only in a session's container, at the same path
PRELOAD_DIR = str(Path(__file__).resolve().parent)
PRELOADER = str(Path(PRELOAD_DIR) / "preloader.py")
