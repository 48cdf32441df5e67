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


def _images(engine: Any, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", "images", *args, "--engine", engine.name],
        cwd=tmp_path,
        env=dict(os.environ, COLUMNS="400"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_images_list_shows_the_labels(tmp_path: Path, engine: Any) -> None:
    proc = _images(engine, tmp_path, "list")
    assert proc.returncode == 0, proc.stderr
    header, *lines = proc.stdout.splitlines()
    assert header.split() == [
        "ENGINE", "IMAGE", "ID", "RECIPE", "HASH", "CORE", "LOCKS", "COLLECTIONS"
    ]  # fmt: skip
    ee = next(line.split() for line in lines if " localhost/containerrunner-ee:latest " in line)
    assert ee[5].startswith("2.19."), "the ansible-core label of the EE"
    assert "base:" in ee[6] and "ee:" in ee[6], "the EE carries its own and its base's locks"


def test_images_inspect_prints_the_locks(tmp_path: Path, engine: Any) -> None:
    proc = _images(engine, tmp_path, "inspect", "localhost/containerrunner-ee:latest")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert f"image: localhost/containerrunner-ee:latest ({engine.name})" in out
    assert any(line.startswith("# lock ee: ee/requirements.lock (") for line in out), proc.stdout
    assert any(line.startswith("# lock base: base/packages.lock (") for line in out)
    assert any(line.startswith("ansible-core==2.19.") and "--hash=sha256:" in line for line in out)
    assert any(line.startswith("libc6=") for line in out)


def test_images_inspect_an_absent_image_fails_clearly(tmp_path: Path, engine: Any) -> None:
    proc = _images(engine, tmp_path, "inspect", "localhost/no-such-image:lock13")
    assert proc.returncode == 1
    assert "image localhost/no-such-image:lock13 not found in " + engine.name in proc.stderr
    assert "Traceback" not in proc.stderr
