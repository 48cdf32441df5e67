"""Bad usage gives exactly one line on stderr, a non-zero exit and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def pdd(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["run", "{pdd}", "-p", "site.yml", "--no-such-flag"], 2, "unrecognized arguments"),
        (["run", "{pdd}/missing", "-p", "site.yml"], 2, "is not a directory"),
        (["run", "{pdd}", "-p", "site.yml", "-m", "ping"], 2, "not allowed with"),
        (["run", "{pdd}"], 2, "-p PLAYBOOK, -m MODULE or -r ROLE"),
        (["run", "{pdd}", "-p", "nope.yml"], 1, "not found"),
        (
            [
                "run",
                "{pdd}",
                "-p",
                "site.yml",
                "--process-isolation",
                "--process-isolation-executable",
                "nonexistent",
            ],
            1,
            "nonexistent",
        ),
        (["run", "{pdd}", "-p", "site.yml", "--engine", "lxc"], 2, "invalid choice"),
        (["exec"], 2, "needs a command"),
        (["exec", "--password", "noequals", "--", "true"], 2, "REGEX=ANSWER"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "a command is required"),
        (["stop", "{pdd}"], 1, "no job is running"),
        (["is-alive", "{pdd}"], 1, ""),
    ],
)
def test_bad_usage_is_one_line(pdd: Path, argv: list[str], code: int, needle: str) -> None:
    proc = cli(*(a.replace("{pdd}", str(pdd)) for a in argv), cwd=pdd)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if needle:
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("containerrunner: ")
        assert needle in proc.stderr
    else:
        assert proc.stderr == ""


def test_missing_image_is_one_line(pdd: Path) -> None:
    proc = cli(
        "run",
        str(pdd),
        "-p",
        "site.yml",
        "--engine",
        "auto",
        "--pull",
        "never",
        "--container-image",
        "localhost/no-such-image:never",
        cwd=pdd,
    )
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "no-such-image" in proc.stderr and "images build" in proc.stderr


def test_debug_shows_the_traceback(pdd: Path) -> None:
    proc = cli("run", str(pdd), "-p", "nope.yml", "--debug", cwd=pdd)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("containerrunner: error: ")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run"],
        ["start"],
        ["stop"],
        ["is-alive"],
        ["exec"],
        ["shell"],
        ["images"],
        ["images", "build"],
        ["images", "list"],
    ],
)
def test_help_has_examples(tmp_path: Path, argv: list[str]) -> None:
    proc = cli(*argv, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "example" in proc.stdout
    assert "usage: containerrunner" in proc.stdout
