"""The pexpect backend: a pty, one merged stream, prompts answered from `passwords`.

The answers must never reach the output sink; every test checks that.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from containerrunner.process import ProcessControls, run_process
from containerrunner.process.controls import compile_prompts
from containerrunner.process.pty import PROMPT_WINDOW, PtyBackend
from tests.unit.test_process_support import Collector, make_fifo, pid_gone, py, wait_eof

SECRET = "s3cr3t-answer"
VAULT_SECRET = "v4ult-answer"


def pexpect_controls(out: Collector, **kw: object) -> ProcessControls:
    return ProcessControls(mode="pexpect", stdout=out, job_timeout=30, **kw)  # type: ignore[arg-type]


def test_getpass_prompt_is_answered_and_the_answer_is_not_in_the_output() -> None:
    out = Collector()
    result = run_process(
        py(f"""
            import getpass
            answer = getpass.getpass("Password: ")
            print("match" if answer == {SECRET!r} else "mismatch")
        """),
        pexpect_controls(out, passwords={r"Password:\s*$": SECRET}),
    )
    assert (result.rc, result.outcome) == (0, "successful")
    assert out.text == "Password: \nmatch\n"
    assert SECRET not in out.text


def test_prompt_after_ten_kib_of_output() -> None:
    out = Collector()
    result = run_process(
        py(f"""
            import getpass, sys
            for i in range(200):
                sys.stdout.write(f"line {{i:04d}} " + "x" * 60 + "\\n")
            answer = getpass.getpass("Password: ")
            print("match" if answer == {SECRET!r} else "mismatch")
        """),
        pexpect_controls(out, passwords={r"Password:\s*$": SECRET}),
    )
    assert result.rc == 0
    assert len(out.text) > 10 * 1024
    assert out.text.endswith("Password: \nmatch\n")
    assert SECRET not in out.text


def test_prompt_split_across_writes(tmp_path: Path) -> None:
    # The child writes "Pass", then waits on a FIFO until the sink has seen "Pass" (so the two
    # halves certainly come in separate reads), then writes "word: " and reads the answer.
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    go = os.open(fifo, os.O_RDWR)  # a writer exists, so the child's open does not block
    try:

        def release() -> None:
            os.write(go, b"g")

        out = Collector().on("Pass", release)
        result = run_process(
            py(f"""
                import os, sys
                go = os.open({str(fifo)!r}, os.O_RDONLY)
                sys.stdout.write("Pass"); sys.stdout.flush()
                os.read(go, 1)
                sys.stdout.write("word: "); sys.stdout.flush()
                answer = sys.stdin.readline().rstrip("\\n")
                print("match" if answer == {SECRET!r} else "mismatch")
            """),
            pexpect_controls(out, passwords={r"Password:\s*$": SECRET}),
        )
    finally:
        os.close(go)
    assert result.rc == 0
    assert out.chunks[0] == "Pass"
    assert out.text == "Password: match\n"
    assert SECRET not in out.text


def test_two_prompts_get_their_own_answers() -> None:
    out = Collector()
    result = run_process(
        py(f"""
            import getpass
            ssh = getpass.getpass("SSH password: ")
            vault = getpass.getpass("Vault password: ")
            print("ok" if (ssh, vault) == ({SECRET!r}, {VAULT_SECRET!r}) else "wrong")
        """),
        pexpect_controls(
            out,
            passwords={r"^SSH password:\s*$": SECRET, r"^Vault password:\s*$": VAULT_SECRET},
        ),
    )
    assert result.rc == 0
    assert out.text.endswith("ok\n")
    assert SECRET not in out.text
    assert VAULT_SECRET not in out.text


class _FakeChild:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def sendline(self, line: str) -> None:
        self.sent.append(line)


def _window_backend(passwords: dict[str, str]) -> tuple[PtyBackend, _FakeChild]:
    backend = PtyBackend(py(""), ProcessControls(mode="pexpect", passwords=passwords))
    backend._prompts = compile_prompts(passwords)
    child = _FakeChild()
    backend._child = child
    return backend, child


def test_prompt_window_answers_each_prompt_once_earliest_first() -> None:
    backend, child = _window_backend({r"Password:\s*$": "p", r"Vault:\s*$": "v"})
    for chunk in ["Pass", "word: ", "more output\n", "Vault: ", "and more\n", "Password: "]:
        backend._answer(chunk)
    assert child.sent == ["p", "v", "p"]
    # two prompts in one read: answered in the order they appear
    backend._answer("Vault: \nPassword: ")
    assert child.sent[3:] == ["v", "p"]


def test_prompt_window_is_bounded_and_still_finds_a_prompt_after_much_output() -> None:
    backend, child = _window_backend({r"Password:\s*$": "p"})
    for _ in range(100):
        backend._answer("x" * 1000 + "\n")
    assert len(backend._window) <= PROMPT_WINDOW
    backend._answer("Pass")
    backend._answer("word:")
    assert child.sent == ["p"]
    assert backend._window == ""


def test_stdout_and_stderr_are_merged() -> None:
    out = Collector()
    result = run_process(
        py("""
            import sys
            sys.stdout.write("out\\n"); sys.stdout.flush()
            sys.stderr.write("err\\n"); sys.stderr.flush()
        """),
        pexpect_controls(out),
    )
    assert result.rc == 0
    assert out.text == "out\nerr\n"  # plain newlines: the pty does not add \r


def test_exit_code_and_signal() -> None:
    assert run_process(py("raise SystemExit(4)"), pexpect_controls(Collector())).rc == 4
    result = run_process(
        py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), pexpect_controls(Collector())
    )
    assert (result.rc, result.reason) == (-signal.SIGKILL, "killed by SIGKILL")


def test_job_timeout_kills_the_child() -> None:
    pids: list[int] = []
    out = Collector()
    result = run_process(
        py("import time; print('ready'); time.sleep(60)"),
        ProcessControls(mode="pexpect", stdout=out, job_timeout=0.5, on_start=pids.append),
    )
    assert (result.rc, result.outcome) == (-signal.SIGTERM, "timeout")
    assert pid_gone(pids[0])


def test_cancel_event_when_the_child_is_ready() -> None:
    cancel = threading.Event()
    out = Collector().on("ready", cancel.set)
    result = run_process(
        py("import time; print('ready'); time.sleep(60)"),
        ProcessControls(mode="pexpect", stdout=out, cancel_event=cancel),
    )
    assert (result.outcome, result.reason) == ("canceled", "canceled by cancel_event")


def test_keyboard_interrupt_in_the_sink_kills_the_child(tmp_path: Path) -> None:
    fifo_fd = make_fifo(tmp_path / "fifo")
    pids: list[int] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            run_process(
                py(f"""
                    import time
                    f = open({str(tmp_path / "fifo")!r}, "w")
                    print("ready")
                    time.sleep(60)
                """),
                ProcessControls(
                    mode="pexpect", stdout=Collector().on("ready", interrupt), on_start=pids.append
                ),
            )
        assert pid_gone(pids[0])
        assert wait_eof(fifo_fd)
    finally:
        os.close(fifo_fd)


def test_a_command_that_does_not_exist_raises_file_not_found(tmp_path: Path) -> None:
    inv = py("")
    inv = type(inv)(("no-such-command-here",), str(tmp_path), inv.env, None, None)
    with pytest.raises(FileNotFoundError):
        run_process(inv, ProcessControls(mode="pexpect"))
