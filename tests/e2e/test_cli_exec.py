"""`containerrunner exec` and `shell`: piped (no TTY) and under a pty, in podman and docker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import EE_IMAGE, our_containers

VAULT_PASSWORD = "s3cret-vault"
PLAINTEXT = "the_plaintext_value"
VAULT_PLAYBOOK = """\
- name: Vault play
  hosts: localhost
  gather_facts: false
  vars_files:
    - secret.yml
  tasks:
    - name: Show the secret
      ansible.builtin.debug:
        msg: "secret is {{ secret_value }}"
"""


def assert_no_exec_containers(engine: Any) -> None:
    """No `exec` container is left (docker removes --rm containers asynchronously: wait)."""
    deadline = time.monotonic() + 15
    while True:
        left = [n for n in our_containers(engine) if n.startswith("containerrunner_exec-")]
        if not left:
            return
        assert time.monotonic() < deadline, f"containers left in {engine.name}: {left}"
        time.sleep(0.3)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["TERM"] = "xterm"
    return env


def exec_args(engine: Any, *cmd: str) -> list[str]:
    return [
        "-m",
        "containerrunner",
        "exec",
        "--engine",
        engine.name,
        "--image",
        EE_IMAGE,
        "--",
        *cmd,
    ]


def cli(
    args: list[str], cwd: Path, stdin: str = "", timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=cli_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn(args: list[str], cwd: Path, dimensions: tuple[int, int] = (24, 80)) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable, args, cwd=str(cwd), env=cli_env(), encoding="utf-8", timeout=120,
        dimensions=dimensions,
    )  # fmt: skip


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return int(child.exitstatus)


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    """A dir with secret.yml encrypted with VAULT_PASSWORD and a playbook that reads it."""
    password_file = tmp_path.parent / f"{tmp_path.name}-vault-pass"
    password_file.write_text(VAULT_PASSWORD + "\n")
    (tmp_path / "secret.yml").write_text(f"secret_value: {PLAINTEXT}\n")
    subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(password_file),
            "secret.yml",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert PLAINTEXT not in (tmp_path / "secret.yml").read_text()
    (tmp_path / "play.yml").write_text(VAULT_PLAYBOOK)
    return tmp_path


def test_exec_piped(tmp_path: Path, engine: Any) -> None:
    (tmp_path / "data.txt").write_text("from the host\n")
    proc = cli(
        exec_args(engine, "sh", "-c", "cat data.txt; cat; echo err >&2; exit 7"),
        tmp_path,
        stdin="from stdin\n",
    )
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "from the host\nfrom stdin\n"
    assert proc.stderr == "err\n"
    proc = cli(exec_args(engine, "sh", "-c", "test -t 0 && echo tty || echo notty"), tmp_path)
    assert proc.stdout.strip() == "notty"
    assert_no_exec_containers(engine)


def test_exec_writes_files_as_the_caller(tmp_path: Path, engine: Any) -> None:
    proc = cli(exec_args(engine, "sh", "-c", "echo made > out.txt"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.txt").read_text() == "made\n"
    assert (tmp_path / "out.txt").stat().st_uid == os.getuid()


def test_exec_under_a_pty(tmp_path: Path, engine: Any) -> None:
    child = spawn(
        exec_args(engine, "sh", "-c", "test -t 0 && echo has-a-tty; read x; echo got-$x"),
        tmp_path,
    )
    child.expect("has-a-tty")
    child.sendline("typed")
    child.expect("got-typed")
    assert finish(child) == 0
    assert_no_exec_containers(engine)


def test_exec_on_a_terminal_has_its_size_and_follows_a_resize(tmp_path: Path, engine: Any) -> None:
    script = (
        # docker < 23 sizes the container's terminal just after it starts: wait for a size.
        'for i in $(seq 100); do s=$(stty size); [ "$s" != "0 0" ] && break; sleep 0.1; done; '
        'echo size=$s; for i in $(seq 600); do [ "$(stty size)" != "$s" ] && break; sleep 0.1; '
        "done; echo now=$(stty size); read x; echo got-$x"
    )
    child = spawn(exec_args(engine, "bash", "-c", script), tmp_path, dimensions=(33, 101))
    child.expect(r"size=(\d+ \d+)")
    assert child.match.group(1) == "33 101"
    # SIGWINCH to containerrunner, which resizes the engine client's pty. The client passes a
    # size on only once its own resize handling is up: on a loaded machine podman's first
    # SIGWINCH can come before that and be lost, so a size that did not arrive is changed
    # again (each change is a new SIGWINCH); the container must see one of the sizes set.
    for columns in range(120, 125):
        child.setwinsize(40, columns)
        if child.expect([r"now=(\d+ \d+)", pexpect.TIMEOUT], timeout=10) == 0:
            break
    else:
        pytest.fail(f"no resize reached the container: {child.before!r}")
    rows, seen = map(int, child.match.group(1).split())
    assert rows == 40 and 120 <= seen <= columns
    child.sendline("typed")
    child.expect("got-typed")
    assert finish(child) == 0
    assert_no_exec_containers(engine)


def test_vault_view_typing_the_password(vault_dir: Path, engine: Any) -> None:
    # The EE has no pager; with a TTY ansible-vault view would run `less`.
    args = [
        "-m",
        "containerrunner",
        "exec",
        "--engine",
        engine.name,
        "--image",
        EE_IMAGE,
        "--env",
        "PAGER=cat",
        "--",
        "ansible-vault",
        "view",
        "secret.yml",
    ]
    child = spawn(args, vault_dir)
    child.expect("Vault password")
    child.sendline(VAULT_PASSWORD)
    child.expect(PLAINTEXT)
    assert finish(child) == 0


def test_vault_view_with_password_option(vault_dir: Path, engine: Any) -> None:
    args = [
        "-m",
        "containerrunner",
        "exec",
        "--engine",
        engine.name,
        "--image",
        EE_IMAGE,
        "--password",
        f"Vault password.*:={VAULT_PASSWORD}",
        "--env",
        "PAGER=cat",
        "--",
        "ansible-vault",
        "view",
        "secret.yml",
    ]
    proc = cli(args, vault_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert PLAINTEXT in proc.stdout


def test_ask_vault_pass_typing(vault_dir: Path, engine: Any) -> None:
    child = spawn(exec_args(engine, "ansible-playbook", "--ask-vault-pass", "play.yml"), vault_dir)
    child.expect("Vault password")
    child.sendline(VAULT_PASSWORD)
    child.expect(f"secret is {PLAINTEXT}")
    assert finish(child) == 0


def test_ask_vault_pass_with_passwords_file(vault_dir: Path, engine: Any, tmp_path: Path) -> None:
    answers = tmp_path.parent / f"{tmp_path.name}-answers.yml"
    answers.write_text(f'"Vault password.*:": "{VAULT_PASSWORD}"\n')
    args = [
        "-m",
        "containerrunner",
        "exec",
        "--engine",
        engine.name,
        "--image",
        EE_IMAGE,
        "--passwords-file",
        str(answers),
        "--",
        "ansible-playbook",
        "--ask-vault-pass",
        "play.yml",
    ]
    proc = cli(args, vault_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"secret is {PLAINTEXT}" in proc.stdout


def test_ctrl_c_reaches_the_command(tmp_path: Path, engine: Any) -> None:
    script = "trap 'echo got-sigint; exit 42' INT; echo ready; while :; do sleep 0.1; done"
    child = spawn(exec_args(engine, "sh", "-c", script), tmp_path)
    child.expect("ready")
    child.sendintr()
    child.expect("got-sigint")
    assert finish(child) == 42
    assert_no_exec_containers(engine)


def test_sigint_without_a_tty_reaches_the_command(tmp_path: Path, engine: Any) -> None:
    script = "trap 'echo got-sigint; exit 42' INT; echo ready; while :; do sleep 0.1; done"
    proc = subprocess.Popen(
        [sys.executable, *exec_args(engine, "sh", "-c", script)],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == "got-sigint\n"
        assert proc.wait(timeout=60) == 42
    finally:
        proc.kill()
        proc.wait()
    assert_no_exec_containers(engine)


def test_shell_under_a_pty(tmp_path: Path, engine: Any) -> None:
    child = spawn(
        ["-m", "containerrunner", "shell", "--engine", engine.name, "--image", EE_IMAGE], tmp_path
    )
    child.expect(r"[$#] ")
    child.sendline("echo h''i; exit 3")
    child.expect("hi")
    assert finish(child) == 3
    assert_no_exec_containers(engine)
