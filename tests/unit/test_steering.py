"""Steering: requests from other threads reach a lifecycle through its wake-up fd."""

from __future__ import annotations

import select

from containerrunner.process.steering import Steering, StopRequest, drain


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_a_request_made_before_attaching_wakes_the_lifecycle_at_once() -> None:
    steering = Steering()
    steering.stop(StopRequest("canceled", "canceled"))
    with steering.attached() as fd:
        assert readable(fd)
        drain(fd)
        assert not readable(fd)


def test_each_request_wakes_the_attached_fd() -> None:
    steering = Steering()
    with steering.attached() as fd:
        assert not readable(fd)
        steering.keep_waiting(3)
        assert readable(fd)
        drain(fd)
        steering.keep_waiting(None)
        assert readable(fd)
    assert steering.take_keep_waiting() == [3, None]
    assert steering.take_keep_waiting() == []


def test_the_first_stop_wins_and_a_later_one_only_shortens_the_grace() -> None:
    steering = Steering()
    steering.stop(StopRequest("timeout", "idle timeout", grace=10))
    steering.stop(StopRequest("canceled", "canceled", grace=None))
    assert steering.stop_request == StopRequest("timeout", "idle timeout", grace=10)
    steering.stop(StopRequest("canceled", "canceled (killed)", grace=0))
    assert steering.stop_request == StopRequest("timeout", "idle timeout", grace=0)


def test_requests_after_detaching_do_not_write_to_a_closed_fd() -> None:
    steering = Steering()
    with steering.attached():
        pass
    steering.stop(StopRequest("canceled", "canceled"))  # no error: nothing attached
    assert steering.stop_request is not None
