"""The subprocess (pipes) backend and the lifecycle: real small local processes, no containers.

Tests synchronise on what the child prints (a sink that acts on a marker), never on sleeps.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from containerrunner.process import ProcessControls, run_process
from containerrunner.process import base as process_base
from tests.unit.test_process_support import (
    Collector,
    fake_engine,
    make_fifo,
    pid_gone,
    py,
    wait_eof,
)

# --- output, exit codes ------------------------------------------------------------------------


def test_stdout_and_stderr_are_kept_apart() -> None:
    out, err = Collector(), Collector()
    result = run_process(
        py("""
            import sys
            print("to stdout")
            print("to stderr", file=sys.stderr)
        """),
        ProcessControls(stdout=out, stderr=err),
    )
    assert (result.rc, result.outcome, result.reason) == (0, "successful", "rc 0")
    assert out.text == "to stdout\n"
    assert err.text == "to stderr\n"


def test_nonzero_exit_is_failed() -> None:
    result = run_process(py("raise SystemExit(3)"), ProcessControls())
    assert (result.rc, result.outcome, result.reason) == (3, "failed", "rc 3")


def test_killed_by_a_signal_keeps_the_negative_rc_and_names_the_signal() -> None:
    result = run_process(
        py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), ProcessControls()
    )
    assert result.rc == -signal.SIGKILL
    assert result.outcome == "failed"
    assert result.reason == "killed by SIGKILL"


def test_on_start_gets_the_pid_of_the_child() -> None:
    pids: list[int] = []
    out = Collector()
    run_process(
        py("import os; print(os.getpid())"), ProcessControls(stdout=out, on_start=pids.append)
    )
    assert pids == [int(out.text)]
    assert pid_gone(pids[0])


def test_utf8_split_across_writes_and_invalid_bytes_are_decoded() -> None:
    out = Collector()
    run_process(
        py(r"""
            import sys
            b = sys.stdout.buffer
            b.write(b"caf\xc3"); b.flush()
            b.write(b"\xa9 \xff!\n"); b.flush()
        """),
        ProcessControls(stdout=out),
    )
    assert out.text == "café \ufffd!\n"


def test_large_output_is_streamed_in_chunks() -> None:
    out = Collector()
    result = run_process(
        py("import sys; sys.stdout.write('x' * (3 * 1024 * 1024))"), ProcessControls(stdout=out)
    )
    assert result.rc == 0
    assert len(out.text) == 3 * 1024 * 1024
    assert len(out.chunks) > 1


def test_a_command_that_does_not_exist_raises_file_not_found(tmp_path: Path) -> None:
    inv = py("")
    inv = type(inv)(("/nonexistent/cmd",), str(tmp_path), inv.env, None, None)
    with pytest.raises(FileNotFoundError):
        run_process(inv, ProcessControls())


def test_child_leaving_a_background_process_on_the_pipes_does_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process_base, "DRAIN_GRACE", 0.2)
    out = Collector()
    result = run_process(
        py("""
            import subprocess, sys
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            print(p.pid)
        """),
        ProcessControls(stdout=out),
    )
    os.kill(int(out.text), signal.SIGKILL)  # the leftover grandchild (not part of a stop)
    assert (result.rc, result.outcome) == (0, "successful")


# --- stdin -------------------------------------------------------------------------------------

ECHO_STDIN = "import sys; data = sys.stdin.read(); print(len(data), data[:20])"


def test_stdin_none_is_dev_null() -> None:
    out = Collector()
    run_process(py(ECHO_STDIN), ProcessControls(stdout=out))
    assert out.text == "0 \n"


def test_stdin_from_stringio_is_fed_to_the_child() -> None:
    out = Collector()
    run_process(py(ECHO_STDIN), ProcessControls(stdin=io.StringIO("hello stdin"), stdout=out))
    assert out.text == "11 hello stdin\n"


def test_stdin_from_bytesio_larger_than_a_pipe_buffer() -> None:
    out = Collector()
    data = b"y" * (1024 * 1024)
    run_process(py(ECHO_STDIN), ProcessControls(stdin=io.BytesIO(data), stdout=out))
    assert out.text == f"{len(data)} {'y' * 20}\n"


def test_stdin_fed_to_a_child_that_never_reads_it_does_not_hang() -> None:
    result = run_process(py("pass"), ProcessControls(stdin=io.BytesIO(b"z" * (4 * 1024 * 1024))))
    assert result.rc == 0


def test_stdin_from_a_real_fd() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"from a pipe")
    os.close(write_fd)
    out = Collector()
    try:
        run_process(py(ECHO_STDIN), ProcessControls(stdin=read_fd, stdout=out))
    finally:
        os.close(read_fd)
    assert out.text == "11 from a pipe\n"


def test_stdin_from_a_file_object_with_fileno(tmp_path: Path) -> None:
    path = tmp_path / "input.txt"
    path.write_text("from a file")
    out = Collector()
    with path.open() as fh:
        run_process(py(ECHO_STDIN), ProcessControls(stdin=fh, stdout=out))
    assert out.text == "11 from a file\n"


# --- timeouts and cancel -----------------------------------------------------------------------

READY_THEN_SLEEP = """
    import time
    print("ready")
    time.sleep(60)
"""


def test_job_timeout_kills_the_child_and_its_children(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    fifo_fd = make_fifo(fifo)
    pids: list[int] = []
    try:
        result = run_process(
            py(f"""
                import subprocess, sys, time
                # a grandchild holding the FIFO open for writing, then sleeping
                subprocess.Popen([sys.executable, "-c",
                    "import time; f = open({str(fifo)!r}, 'w'); print('ready', flush=True); "
                    "time.sleep(60)"])
                time.sleep(60)
            """),
            ProcessControls(job_timeout=0.5, on_start=pids.append),
        )
        assert (result.rc, result.outcome) == (-signal.SIGTERM, "timeout")
        assert result.reason == "job timeout after 0.5s"
        assert pid_gone(pids[0])
        assert wait_eof(fifo_fd), "the grandchild still holds the FIFO: it was not killed"
    finally:
        os.close(fifo_fd)


def test_idle_timeout_after_output_then_silence() -> None:
    out = Collector()
    result = run_process(py(READY_THEN_SLEEP), ProcessControls(idle_timeout=0.5, stdout=out))
    assert (result.rc, result.outcome) == (-signal.SIGTERM, "timeout")
    assert result.reason == "idle timeout: no output for 0.5s"
    assert out.text == "ready\n"


def test_idle_timeout_is_reset_by_output() -> None:
    result = run_process(
        py("""
            import time
            for i in range(10):
                print(i)
                time.sleep(0.05)
        """),
        ProcessControls(idle_timeout=5),
    )
    assert (result.rc, result.outcome) == (0, "successful")


def test_cancel_callback_cancels_once_it_returns_true() -> None:
    out = Collector()
    ready = out.event("ready")
    calls: list[bool] = []

    def cancel() -> bool:
        calls.append(ready.is_set())
        return ready.is_set()

    result = run_process(py(READY_THEN_SLEEP), ProcessControls(cancel_callback=cancel, stdout=out))
    assert (result.rc, result.outcome, result.reason) == (
        -signal.SIGTERM,
        "canceled",
        "canceled by cancel_callback",
    )
    assert calls[-1] is True


def test_cancel_callback_that_raises_cancels_and_says_why() -> None:
    out = Collector()
    ready = out.event("ready")

    def cancel() -> bool:
        if ready.is_set():
            raise RuntimeError("boom")
        return False

    result = run_process(py(READY_THEN_SLEEP), ProcessControls(cancel_callback=cancel, stdout=out))
    assert result.outcome == "canceled"
    assert result.reason == "canceled: cancel_callback raised RuntimeError: boom"


def test_cancel_event_set_from_another_thread() -> None:
    out = Collector()
    ready = out.event("ready")
    cancel = threading.Event()

    def canceller() -> None:
        ready.wait()
        cancel.set()

    thread = threading.Thread(target=canceller, daemon=True)
    thread.start()
    result = run_process(py(READY_THEN_SLEEP), ProcessControls(cancel_event=cancel, stdout=out))
    thread.join()
    assert (result.rc, result.outcome, result.reason) == (
        -signal.SIGTERM,
        "canceled",
        "canceled by cancel_event",
    )


def test_a_child_ignoring_sigterm_gets_sigkill_after_the_grace() -> None:
    cancel = threading.Event()
    out = Collector().on("ready", cancel.set)
    result = run_process(
        py("""
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ready")
            time.sleep(60)
        """),
        ProcessControls(cancel_event=cancel, stdout=out, termination_grace=0.3),
    )
    assert (result.rc, result.outcome, result.stopped) == (-signal.SIGKILL, "canceled", "killed")


def test_output_written_while_stopping_still_reaches_the_sink() -> None:
    cancel = threading.Event()
    out = Collector().on("ready\n", cancel.set)
    result = run_process(
        py("""
            import signal, sys, time
            def bye(signum, frame):
                sys.stdout.write("cleaning up\\n")
                sys.exit(5)
            signal.signal(signal.SIGTERM, bye)
            sys.stdout.write("ready\\n")  # one write: a signal cannot split it
            time.sleep(60)
        """),
        ProcessControls(cancel_event=cancel, stdout=out),
    )
    assert (result.rc, result.outcome) == (5, "canceled")
    assert out.text == "ready\ncleaning up\n"


# --- exceptions in the calling thread ----------------------------------------------------------


def test_keyboard_interrupt_in_a_sink_kills_the_child_and_is_reraised(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    fifo_fd = make_fifo(fifo)
    pids: list[int] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    out = Collector().on("ready", interrupt)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            run_process(
                py(f"""
                    import time
                    f = open({str(fifo)!r}, "w")
                    print("ready")
                    time.sleep(60)
                """),
                ProcessControls(stdout=out, on_start=pids.append),
            )
        assert pid_gone(pids[0])
        assert wait_eof(fifo_fd)
        assert any("was stopped (killed by SIGTERM)" in note for note in info.value.__notes__)
    finally:
        os.close(fifo_fd)


def test_other_exceptions_in_a_sink_stop_the_job_and_propagate() -> None:
    pids: list[int] = []

    def fail() -> None:
        raise ValueError("sink is full")

    with pytest.raises(ValueError, match="sink is full"):
        run_process(
            py(READY_THEN_SLEEP),
            ProcessControls(stdout=Collector().on("ready", fail), on_start=pids.append),
        )
    assert pid_gone(pids[0])


def test_on_start_raising_kills_the_child() -> None:
    pids: list[int] = []

    def on_start(pid: int) -> None:
        pids.append(pid)
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        run_process(py(READY_THEN_SLEEP), ProcessControls(on_start=on_start))
    assert pid_gone(pids[0])


# --- containers: stopped (engine stop --time grace) and removed by name first ------------------


@pytest.mark.parametrize(
    ("engine_name", "rm_args"),
    [("docker", "rm --force"), ("podman", "rm --force --time 0")],
)
def test_cancel_stops_and_removes_the_container_before_signalling_the_client(
    tmp_path: Path, engine_name: str, rm_args: str
) -> None:
    engine, log = fake_engine(tmp_path, engine_name)  # type: ignore[arg-type]
    cancel = threading.Event()
    out = Collector().on("ready", cancel.set)
    result = run_process(
        py(
            f"""
            import signal, sys, time
            def bye(signum, frame):
                with open({str(log)!r}, "a") as fh:
                    fh.write("client got SIGTERM\\n")
                sys.exit(1)
            signal.signal(signal.SIGTERM, bye)
            print("ready")
            time.sleep(60)
            """,
            container_name="containerrunner_job1",
            engine=engine,
        ),
        ProcessControls(cancel_event=cancel, stdout=out),
    )
    assert result.outcome == "canceled"
    assert log.read_text().splitlines() == [
        "stop --time 5 containerrunner_job1",
        f"{rm_args} containerrunner_job1",
        "client got SIGTERM",
    ]


def test_timeout_removes_the_container(tmp_path: Path) -> None:
    engine, log = fake_engine(tmp_path)
    result = run_process(
        py(READY_THEN_SLEEP, container_name="containerrunner_job2", engine=engine),
        ProcessControls(job_timeout=0.3),
    )
    assert result.outcome == "timeout"
    assert log.read_text().splitlines() == [
        "stop --time 5 containerrunner_job2",
        "rm --force containerrunner_job2",
    ]


def test_a_container_is_not_removed_when_the_job_ends_by_itself(tmp_path: Path) -> None:
    engine, log = fake_engine(tmp_path)
    result = run_process(
        py("print('done')", container_name="containerrunner_job3", engine=engine),
        ProcessControls(),
    )
    assert result.outcome == "successful"
    assert not log.exists()


def test_keyboard_interrupt_removes_the_container(tmp_path: Path) -> None:
    engine, log = fake_engine(tmp_path)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_process(
            py(READY_THEN_SLEEP, container_name="containerrunner_job4", engine=engine),
            ProcessControls(stdout=Collector().on("ready", interrupt)),
        )
    assert log.read_text().splitlines() == [
        "stop --time 5 containerrunner_job4",
        "rm --force containerrunner_job4",
    ]


def test_no_sleep_based_polling_without_deadlines_or_cancel() -> None:
    # With nothing to watch, the lifecycle blocks until output or exit: pump() gets None.
    timeouts: list[float | None] = []
    original = process_base.Backend.pump

    def spy(self: process_base.Backend, timeout: float | None) -> bool:
        timeouts.append(timeout)
        return original(self, timeout)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(process_base.Backend, "pump", spy)
        run_process(py("print('x')"), ProcessControls())
    if getattr(os, "pidfd_open", None) is not None and sys.platform == "linux":
        assert timeouts
        assert all(timeout is None for timeout in timeouts)


# --- without pidfd (macOS, kernels before 5.3): exit seen by waitid(WNOWAIT) on a tick -------


@pytest.fixture
def no_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)


@pytest.mark.usefixtures("no_pidfd")
def test_without_pidfd_output_and_exit_code() -> None:
    out, err = Collector(), Collector()
    result = run_process(
        py("import sys; print('o'); print('e', file=sys.stderr); sys.exit(2)"),
        ProcessControls(stdout=out, stderr=err, stdin=io.StringIO("unused")),
    )
    assert (result.rc, out.text, err.text) == (2, "o\n", "e\n")


@pytest.mark.usefixtures("no_pidfd")
def test_without_pidfd_child_that_closes_its_streams_before_exiting() -> None:
    result = run_process(
        py("""
            import os
            os.close(1); os.close(2)
            raise SystemExit(7)
        """),
        ProcessControls(),
    )
    assert result.rc == 7


@pytest.mark.usefixtures("no_pidfd")
def test_without_pidfd_keyboard_interrupt_kills_the_child(tmp_path: Path) -> None:
    engine, log = fake_engine(tmp_path)
    pids: list[int] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_process(
            py(READY_THEN_SLEEP, container_name="containerrunner_job5", engine=engine),
            ProcessControls(stdout=Collector().on("ready", interrupt), on_start=pids.append),
        )
    assert pid_gone(pids[0])
    assert log.read_text().splitlines() == [
        "stop --time 5 containerrunner_job5",
        "rm --force containerrunner_job5",
    ]
