"""`containerrunner session start` shows its image pull as `run` does: the holder daemon
relays each PullProgress up its pipe (cli/daemon.py `PROGRESS` lines) and the caller shows
them (cli/progress.py `PullView`): plain lines on stderr, --json items on stdout, a live row
on a TTY. No engine: Session.start is replaced by one that reports a pull."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from containerrunner.cli import daemon, sessioncmds
from containerrunner.cli.args import parse_args
from containerrunner.cli.progress import PullView
from containerrunner.progress import PullProgress
from containerrunner.session import Session

IMAGE = "127.0.0.1:50429/cr-test/tiny:1"


def step(status: str, layer: str = "cc0689e332ab", done: bool = False) -> PullProgress:
    return PullProgress(
        image=IMAGE, status=status, layer=layer, current=None, total=None, done=done,
        via="the CLI", elapsed=0.5,
    )  # fmt: skip


STEPS = [
    step("Copying blob"),
    step("Writing manifest", layer=""),
    step("pulled", layer="", done=True),
]


class Started(Exception):
    """Ends the fake holder at report("started") (the real one waits for a signal)."""


def fake_spawn(
    job: Callable[[Callable[[str], None]], int],
    *,
    log_path: str | None,
    pidfile: str | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> int:
    """daemon.spawn in this process: progress lines to on_progress, "started" ends it."""
    assert log_path is None and on_progress is not None

    def report(message: str) -> None:
        kind, _, text = message.partition(" ")
        if kind == daemon.PROGRESS:
            on_progress(text)
        elif kind == "started":
            raise Started
        else:
            raise AssertionError(message)

    with pytest.raises(Started):
        job(report)
    return 4242


@pytest.fixture
def fake_holder(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Session.start reports STEPS to its pull_progress_handler; close is recorded."""
    calls: list[str] = []

    def start(self: Session) -> Session:
        calls.append(f"start pull={self._options.pull}")
        assert self.pull_progress_handler is not None
        for item in STEPS:
            self.pull_progress_handler(item)
        return self

    monkeypatch.setattr(Session, "start", start)
    monkeypatch.setattr(Session, "close", lambda self: calls.append("close"))
    monkeypatch.setattr(daemon, "spawn", fake_spawn)
    return calls


def session_start(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    args = parse_args(["session", "start", "--image", IMAGE, "-i", "s1", *options])
    code = sessioncmds.cmd_session_start(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_plain_session_start_prints_the_pull_on_stderr_and_the_id_on_stdout(
    fake_holder: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = session_start(capsys, "--pull", "always")
    assert code == 0
    assert out == "s1\n"
    assert err.splitlines() == [
        f"pull {IMAGE}: cc0689e332ab Copying blob",
        f"pull {IMAGE}: Writing manifest",
        f"pull {IMAGE}: pulled",
    ]
    assert fake_holder == ["start pull=always", "close"]


def test_json_session_start_gives_pull_items_then_the_id_as_json(
    fake_holder: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = session_start(capsys, "-j")
    assert code == 0 and err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["event"] for line in lines] == ["containerrunner_image_pull"] * 3 + [
        "containerrunner_session_started"
    ]
    assert [PullProgress(**line["event_data"]) for line in lines[:3]] == STEPS
    assert lines[-1]["event_data"] == {"ident": "s1"}


def test_session_start_without_a_pull_prints_only_the_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Session, "start", lambda self: self)
    monkeypatch.setattr(Session, "close", lambda self: None)
    monkeypatch.setattr(daemon, "spawn", fake_spawn)
    assert session_start(capsys) == (0, "s1\n", "")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_pull_view_on_a_tty_draws_a_live_row_and_quiet_gives_lines() -> None:
    out, err = Tty(), io.StringIO()
    view = PullView(json_mode=False, quiet=False, stdout=out, stderr=err)
    assert view.live is not None and view.lines is None
    assert view.live.is_started is False  # nothing drawn before the first item
    view.pull(STEPS[0])
    assert view.live.is_started
    view.finish()
    view.finish()
    assert f"pull {IMAGE}: cc0689e332ab Copying blob" in out.getvalue()
    assert err.getvalue() == ""
    quiet = PullView(json_mode=False, quiet=True, stdout=out, stderr=err)
    assert quiet.live is None
    quiet.pull(STEPS[1])
    assert err.getvalue() == f"pull {IMAGE}: Writing manifest\n"


def test_shown_pull_drops_a_line_that_is_not_an_item() -> None:
    got: list[PullProgress] = []

    class View:
        def pull(self, item: PullProgress) -> None:
            got.append(item)

    show = sessioncmds.shown_pull(View())  # type: ignore[arg-type]
    show("not json")
    show('{"unknown": 1}')
    sent: list[str] = []
    sessioncmds.pull_relay(sent.append)(STEPS[0])
    kind, _, text = sent[0].partition(" ")
    assert kind == daemon.PROGRESS
    show(text)
    assert got == [STEPS[0]]


def test_spawn_hands_each_progress_line_over_before_the_start(tmp_path: Any) -> None:
    """The real double fork: the daemon's progress lines reach on_progress in order, and
    spawn returns the daemon's pid at "started"."""
    seen: list[str] = []
    marker = tmp_path / "ran"

    def job(report: Callable[[str], None]) -> int:  # pragma: no cover - in the daemon
        report(f"{daemon.PROGRESS} one")
        report(f"{daemon.PROGRESS} two\nlines")
        marker.write_text(str(os.getpid()))
        report("started")
        report(f"{daemon.PROGRESS} after")  # after the start: nobody reads it
        return 0

    pid = daemon.spawn(job, log_path=None, on_progress=seen.append)
    assert seen == ["one", "two lines"]
    assert marker.read_text() == str(pid)
