"""ProcessControls validation and the deadline arithmetic of Watch (no processes, fake clock)."""

from __future__ import annotations

import io
import threading

import pytest

from containerrunner.errors import ConfigurationError
from containerrunner.process import CANCEL_POLL_INTERVAL, ProcessControls
from containerrunner.process.controls import TimeoutNotice, Watch, compile_prompts
from containerrunner.process.steering import Steering, StopRequest


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


# --- the start phase, reported timeouts, steering (fake clock) ---------------------------------


def test_start_phase_runs_only_the_start_timeout_then_the_job_clock_starts() -> None:
    controls = ProcessControls(start_timeout=10, job_timeout=5, idle_timeout=2)
    watch = Watch(controls, now=100.0, starting=True)
    assert watch.starting
    assert watch.wait_time(100.0) == 10.0  # neither job nor idle deadline yet
    assert watch.stop_reason(107.0) is None  # 7 s: past the job timeout counted from spawn
    watch.started(108.0)
    assert not watch.starting
    assert watch.wait_time(108.0) == 2.0
    assert watch.stop_reason(109.9) is None
    assert watch.stop_reason(110.0) == ("timeout", "idle timeout: no output for 2s")


def test_start_timeout_counts_what_the_image_phase_spent() -> None:
    controls = ProcessControls(start_timeout=3, start_spent=1)
    watch = Watch(controls, now=100.0, starting=True)
    assert watch.stop_reason(101.9) is None
    outcome, reason = watch.stop_reason(102.0) or ("", "")
    assert outcome == "timeout"
    assert reason.startswith("start timeout after 3s") and "start phase: container start" in reason


def test_output_ends_the_start_phase() -> None:
    watch = Watch(ProcessControls(start_timeout=1, job_timeout=5), now=100.0, starting=True)
    watch.saw_output(100.5)
    assert not watch.starting
    assert watch.stop_reason(101.5) is None  # the start timeout no longer runs
    assert watch.stop_reason(105.5) == ("timeout", "job timeout after 5s")


def test_without_starting_the_start_timeout_is_not_armed() -> None:
    watch = Watch(ProcessControls(start_timeout=1, job_timeout=5), now=100.0)
    assert not watch.starting
    assert watch.stop_reason(102.0) is None


def test_a_reported_timeout_waits_for_the_decision() -> None:
    notices: list[TimeoutNotice] = []
    steering = Steering()
    controls = ProcessControls(
        idle_timeout=2, steering=steering, on_timeout=lambda n: notices.append(n) or True
    )
    watch = Watch(controls, now=100.0)
    assert watch.stop_reason(102.0) is None
    assert [(n.kind, n.limit, n.elapsed) for n in notices] == [("idle", 2.0, 2.0)]
    assert watch.wait_time(102.0) is None  # nothing to wait for but the decision
    assert watch.stop_reason(150.0) is None and len(notices) == 1  # reported once
    steering.keep_waiting(None)
    assert watch.stop_reason(151.0) is None
    assert watch.wait_time(151.0) == 2.0  # one more period from the decision
    assert watch.stop_reason(153.0) is None and len(notices) == 2
    steering.keep_waiting(7)
    assert watch.stop_reason(153.0) is None
    assert watch.wait_time(153.0) == 7.0


def test_keep_waiting_extends_the_total_timeout() -> None:
    notices: list[TimeoutNotice] = []
    steering = Steering()
    controls = ProcessControls(
        job_timeout=5, steering=steering, on_timeout=lambda n: notices.append(n) or True
    )
    watch = Watch(controls, now=100.0)
    assert watch.stop_reason(105.0) is None
    assert [(n.kind, n.reason) for n in notices] == [("total", "job timeout after 5s")]
    steering.keep_waiting(3)
    assert watch.stop_reason(106.0) is None
    assert watch.stop_reason(109.0) is None
    assert [(n.kind, n.limit, n.elapsed) for n in notices][1] == ("total", 9.0, 9.0)


def test_on_timeout_returning_false_enforces_the_timeout() -> None:
    watch = Watch(ProcessControls(job_timeout=1, on_timeout=lambda n: False), now=100.0)
    assert watch.stop_reason(101.0) == ("timeout", "job timeout after 1s")


def test_a_stop_request_gives_its_outcome_and_grace() -> None:
    steering = Steering()
    watch = Watch(ProcessControls(steering=steering, termination_grace=5), now=100.0)
    assert watch.grace == 5.0
    assert watch.stop_reason(100.0) is None
    steering.stop(StopRequest("timeout", "idle timeout: no output for 2s", grace=1.5))
    assert watch.stop_reason(100.0) == ("timeout", "idle timeout: no output for 2s")
    assert watch.grace == 1.5


def test_with_a_steering_the_cancel_event_is_not_polled() -> None:
    cancel = threading.Event()
    with_steering = Watch(ProcessControls(cancel_event=cancel, steering=Steering()), now=100.0)
    assert with_steering.wait_time(100.0) is None
    assert Watch(ProcessControls(cancel_event=cancel), now=100.0).wait_time(100.0) is not None


@pytest.mark.parametrize("grace", [-1, "5", True])
def test_termination_grace_must_be_seconds(grace: object) -> None:
    with pytest.raises(ConfigurationError, match="termination_grace"):
        ProcessControls(termination_grace=grace)  # type: ignore[arg-type]
