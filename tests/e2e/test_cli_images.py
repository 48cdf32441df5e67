"""`containerrunner images list` against the real engines (build is exercised by scripts/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def test_images_list_shows_the_ee_per_engine(tmp_path: Path, engine: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "containerrunner", "images", "list", "--engine", engine.name],
        cwd=tmp_path,
        env=dict(os.environ, COLUMNS="200"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[1:]]
    ee = [row for row in rows if row[1] == "localhost/containerrunner-ee:latest"]
    assert ee, proc.stdout
    assert ee[0][0] == engine.name
    assert len(ee[0][2]) == 12
    assert ee[0][3] in ("current", "stale")
