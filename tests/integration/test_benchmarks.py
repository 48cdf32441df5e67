"""benchmarks/run.py --smoke: the harness runs every method of its rows and reports them.

Nothing here asserts a timing: only that each row ran, in fresh processes, and reported
samples (events and peak RSS for the runners; no lost event in B3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from containerrunner.isolation.engine import Engine

pytestmark = pytest.mark.integration

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def smoke(tmp_path: Path, *args: str) -> dict[str, Any]:
    report = tmp_path / "bench.json"
    # The harness's temp dir is the test's: ansible-runner's helpers and run_command, called
    # without a private data dir as a script calls them, make `.ansible-runner-*` there and
    # never remove it.
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "-q", "--json", str(report), *args],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(temp)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    for row in data["rows"]:
        assert row["title"] in proc.stdout
    return data


def methods(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in row["methods"]}


def test_smoke_host_rows(tmp_path: Path) -> None:
    data = smoke(tmp_path, "--rows", "B1,B3")
    assert [r["bench"] for r in data["rows"]] == ["B1", "B3"]
    for row in data["rows"]:
        by_key = methods(row)
        assert set(by_key) == {"bare", "cr", "ar"}
        for m in by_key.values():
            assert m["unavailable"] is None, m
            [s] = m["samples"]
            assert s["seconds"] > 0 and s["rss_kb"] > 0
        assert by_key["cr"]["samples"][0]["events"] == by_key["ar"]["samples"][0]["events"] > 0
    b3 = methods(data["rows"][1])
    assert b3["cr"]["lost"] == b3["ar"]["lost"] == "none"
    assert b3["cr"]["samples"][0]["latency_ms"] is not None


def test_smoke_helper_row(engine: Engine, tmp_path: Path) -> None:
    data = smoke(tmp_path, "--rows", "B5", "--engine", engine.name)
    [row] = data["rows"]
    by_key = methods(row)
    for key in ("bare", "cr", "ar"):
        assert by_key[key]["unavailable"] is None, by_key[key]
        assert len(by_key[key]["samples"]) == 1
    for key in ("cr-warm", "cr-warm-exec"):  # preloaded, and exec'd (preload=False)
        warm = by_key[key]
        assert warm["unavailable"] == "no Session" or len(warm["samples"]) == 1, warm
