"""ProcessControls validation and the deadline arithmetic of Watch (no processes, fake clock)."""

from __future__ import annotations

import io
import threading

import pytest

from containerrunner.errors import ConfigurationError
from containerrunner.process import CANCEL_POLL_INTERVAL, ProcessControls
from containerrunner.process.controls import Watch, compile_prompts


@pytest.mark.parametrize("value", [0, -1.5])
@pytest.mark.parametrize("name", ["job_timeout", "idle_timeout"])
def test_timeouts_must_be_positive(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=name):
        ProcessControls(**{name: value})  # type: ignore[arg-type]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="subprocess or pexpect"):
        ProcessControls(mode="pty")  # type: ignore[arg-type]


def test_stdin_in_pexpect_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="stdin"):
        ProcessControls(mode="pexpect", stdin=io.StringIO("x"))


def test_bad_password_regex_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"'\(unclosed'"):
        ProcessControls(mode="pexpect", passwords={"(unclosed": "x"})


def test_password_regex_matching_empty_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="empty string"):
        ProcessControls(mode="pexpect", passwords={"x*": "x"})


def test_compile_prompts_is_multiline() -> None:
    [(regex, answer)] = compile_prompts({r"^Password:\s*$": "a"})
    assert regex.search("lots of output\nPassword: ")
    assert answer == "a"


def test_watch_with_nothing_to_watch_waits_for_the_process_only() -> None:
    watch = Watch(ProcessControls(), now=100.0)
    assert watch.wait_time(100.0) is None
    assert watch.stop_reason(1e9) is None


def test_watch_job_timeout() -> None:
    watch = Watch(ProcessControls(job_timeout=5), now=100.0)
    assert watch.wait_time(101.0) == pytest.approx(4.0)
    assert watch.stop_reason(104.9) is None
    assert watch.stop_reason(105.0) == ("timeout", "job timeout after 5s")


def test_watch_idle_timeout_moves_with_output() -> None:
    watch = Watch(ProcessControls(idle_timeout=2), now=100.0)
    assert watch.wait_time(100.5) == pytest.approx(1.5)
    watch.saw_output(101.0)
    assert watch.stop_reason(102.5) is None
    assert watch.wait_time(102.5) == pytest.approx(0.5)
    assert watch.stop_reason(103.0) == ("timeout", "idle timeout: no output for 2s")


def test_watch_polls_cancel_callback_at_the_interval() -> None:
    calls: list[int] = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3

    watch = Watch(ProcessControls(cancel_callback=cancel), now=100.0)
    assert watch.stop_reason(100.0) is None  # polled at once
    assert watch.wait_time(100.0) == pytest.approx(CANCEL_POLL_INTERVAL)
    assert watch.stop_reason(100.0 + CANCEL_POLL_INTERVAL / 2) is None  # not polled yet
    assert len(calls) == 1
    assert watch.stop_reason(100.0 + CANCEL_POLL_INTERVAL) is None
    assert watch.stop_reason(100.0 + 2 * CANCEL_POLL_INTERVAL) == (
        "canceled",
        "canceled by cancel_callback",
    )
    assert len(calls) == 3


def test_watch_polls_cancel_callback_every_cancel_poll_seconds() -> None:
    """env/settings pexpect_timeout: ansible-runner's wait between cancel_callback calls."""
    calls: list[float] = []
    watch = Watch(
        ProcessControls(cancel_callback=lambda: bool(calls.append(1)), cancel_poll=3.0), now=0.0
    )
    for now in (0.0, 1.0, 2.9, 3.0, 5.0, 6.0):
        assert watch.stop_reason(now) is None
    assert len(calls) == 3  # at 0, 3 and 6
    assert watch.wait_time(6.0) == pytest.approx(3.0)
    with pytest.raises(ConfigurationError, match="cancel_poll"):
        ProcessControls(cancel_poll=0)


def test_watch_cancel_event() -> None:
    event = threading.Event()
    watch = Watch(ProcessControls(cancel_event=event), now=100.0)
    assert watch.wait_time(100.0) == pytest.approx(CANCEL_POLL_INTERVAL)
    assert watch.stop_reason(100.0) is None
    event.set()
    assert watch.stop_reason(100.0) == ("canceled", "canceled by cancel_event")


def test_watch_job_timeout_wins_over_a_later_idle_deadline() -> None:
    watch = Watch(ProcessControls(job_timeout=1, idle_timeout=10), now=0.0)
    assert watch.wait_time(0.0) == pytest.approx(1.0)
