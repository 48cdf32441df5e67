"""A terminal as stdin: the child gets a pty of its own, a copy of the caller's terminal.

Each test opens a pty pair and gives its slave end as stdin, as a caller would give its
terminal (`sys.stdin`); the master end plays the user (typing) and the terminal's size is
set on it with TIOCSWINSZ.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import signal
import struct
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

import pytest

from containerrunner.process import ProcessControls, ProcessResult, run_process
from containerrunner.process.terminal import terminal_fd, terminal_size
from tests.unit.test_process_support import GUARD, Collector, py

SHOW_SIZE = """
    import os, sys
    print("tty" if all(os.isatty(fd) for fd in (0, 1, 2)) else "no tty")
    print("size=%d %d" % (os.get_terminal_size(0).lines, os.get_terminal_size(0).columns))
    print("to-err", file=sys.stderr)
"""


@dataclass
class Terminal:
    """A pty pair: `slave` is the caller's terminal, `master` the user at it."""

    master: int
    slave: int

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    master, slave = os.openpty()
    term = Terminal(master, slave)
    term.resize(33, 101)
    try:
        yield term
    finally:
        os.close(slave)
        os.close(master)


def run_on(terminal: Terminal, code: str, out: Collector, **kw: object) -> ProcessResult:
    controls = ProcessControls(stdin=terminal.slave, stdout=out, job_timeout=GUARD, **kw)  # type: ignore[arg-type]
    return run_process(py(code), controls)


def test_terminal_fd_finds_a_terminal_only(terminal: Terminal) -> None:
    assert terminal_fd(terminal.slave) == terminal.slave
    with os.fdopen(os.dup(terminal.slave), "rb", buffering=0) as fh:
        assert terminal_fd(fh) == fh.fileno()
    read_end, write_end = os.pipe()
    try:
        assert terminal_fd(read_end) is None
    finally:
        os.close(read_end)
        os.close(write_end)
    assert terminal_fd(None) is None
    assert terminal_size(terminal.slave) == (33, 101)


def test_the_child_gets_a_pty_of_the_terminals_size_and_one_stream(terminal: Terminal) -> None:
    out, err = Collector(), Collector()
    result = run_on(terminal, SHOW_SIZE, out, stderr=err)
    assert (result.rc, result.outcome) == (0, "successful")
    # The child's pty has the terminal's settings (ONLCR: a terminal's \r\n).
    assert out.text == "tty\r\nsize=33 101\r\nto-err\r\n"
    assert err.text == ""


def test_the_terminal_is_raw_while_the_job_runs_and_restored_after(terminal: Terminal) -> None:
    before = termios.tcgetattr(terminal.slave)
    assert before[3] & termios.ICANON
    during: list[list[object]] = []
    out = Collector().on("ready", lambda: during.append(termios.tcgetattr(terminal.slave)))
    result = run_on(terminal, "print('ready')", out)
    assert result.rc == 0
    assert not during[0][3] & (termios.ICANON | termios.ECHO | termios.ISIG)  # type: ignore[operator]
    assert termios.tcgetattr(terminal.slave) == before


def test_what_is_typed_reaches_the_child(terminal: Terminal) -> None:
    out = Collector().on("name? ", lambda: terminal.type("world\n"))
    result = run_on(terminal, "print('got ' + input('name? '))", out)
    assert result.rc == 0
    # The child's pty echoes what is typed (a copy of the terminal's settings: echo on).
    assert out.text == "name? world\r\ngot world\r\n"


def test_ctrl_c_typed_is_sigint_in_the_child(terminal: Terminal) -> None:
    out = Collector().on("ready", lambda: terminal.type("\x03"))
    code = """
        import signal, sys, time
        signal.signal(signal.SIGINT, lambda *a: (print("got-sigint"), sys.exit(42)))
        print("ready")
        time.sleep(60)
    """
    result = run_on(terminal, code, out)
    assert result.rc == 42
    assert "got-sigint" in out.text


def test_a_size_change_reaches_the_child_in_the_main_thread(terminal: Terminal) -> None:
    assert threading.current_thread() is threading.main_thread()
    calls: list[int] = []

    def earlier_handler(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    def resize() -> None:
        terminal.resize(40, 120)
        # The pty pair is not this process's controlling terminal: send what a resize of it
        # would send.
        os.kill(os.getpid(), signal.SIGWINCH)

    code = """
        import os, signal, time
        changed = []
        signal.signal(signal.SIGWINCH, lambda *a: changed.append(1))
        print("ready", flush=True)
        deadline = time.monotonic() + 20
        while not changed and time.monotonic() < deadline:
            time.sleep(0.05)
        size = os.get_terminal_size(0)
        print("now=%d %d" % (size.lines, size.columns))
    """
    out = Collector().on("ready", resize)
    previous = signal.signal(signal.SIGWINCH, earlier_handler)
    try:
        result = run_on(terminal, code, out)
        assert signal.getsignal(signal.SIGWINCH) is earlier_handler  # put back
    finally:
        signal.signal(signal.SIGWINCH, previous)
    assert result.rc == 0
    assert "now=40 120" in out.text
    assert calls == [signal.SIGWINCH]  # the handler that was there is still called


def test_in_another_thread_the_size_at_start_is_kept(terminal: Terminal) -> None:
    out = Collector()
    results: list[ProcessResult] = []
    handler_during: list[object] = []

    def record() -> None:
        handler_during.append(signal.getsignal(signal.SIGWINCH))

    thread = threading.Thread(
        target=lambda: results.append(run_on(terminal, SHOW_SIZE, out.on("tty", record)))
    )
    thread.start()
    thread.join(GUARD)
    assert not thread.is_alive()
    assert results[0].rc == 0
    assert "size=33 101" in out.text
    assert handler_during == [signal.SIG_DFL]  # no handler installed from a thread


def test_job_timeout_kills_the_child_and_restores_the_terminal(terminal: Terminal) -> None:
    before = termios.tcgetattr(terminal.slave)
    out = Collector()
    controls = ProcessControls(stdin=terminal.slave, stdout=out, job_timeout=1)
    result = run_process(py("import time; print('ready'); time.sleep(60)"), controls)
    assert result.outcome == "timeout"
    assert termios.tcgetattr(terminal.slave) == before
    assert signal.getsignal(signal.SIGWINCH) == signal.SIG_DFL


def test_a_command_that_does_not_exist_leaves_the_terminal_as_it_was(terminal: Terminal) -> None:
    before = termios.tcgetattr(terminal.slave)
    inv = dataclasses.replace(py("pass"), argv=("/no/such/program",))
    with pytest.raises(FileNotFoundError):
        run_process(inv, ProcessControls(stdin=terminal.slave, stdout=Collector()))
    assert termios.tcgetattr(terminal.slave) == before
    assert signal.getsignal(signal.SIGWINCH) == signal.SIG_DFL
