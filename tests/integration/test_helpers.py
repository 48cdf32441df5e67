"""run_command and the Ansible utility helpers, on the host and in real podman and docker."""

from __future__ import annotations

import fcntl
import io
import os
import struct
import subprocess
import tempfile
import termios
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine, detect_engine
from tests.conftest import NETWORK_EE_IMAGE, our_containers
from tests.integration.support import (
    LOCAL_VARS,
    Watcher,
    assert_secret_nowhere,
    container_kwargs,
    make_vault,
)

pytestmark = pytest.mark.integration


def test_run_command_ansible_version(where: dict[str, Any], tmp_path: Path) -> None:
    out, err, rc = containerrunner.run_command(
        "ansible", ["--version"], host_cwd=str(tmp_path), **where
    )
    assert rc == 0, err
    assert out.startswith("ansible [core 2.")


def test_run_command_keeps_stderr_apart_and_rc(where: dict[str, Any], tmp_path: Path) -> None:
    out, err, rc = containerrunner.run_command(
        "python3",
        ["-c", "import sys; print('to-out'); print('to-err', file=sys.stderr); sys.exit(3)"],
        host_cwd=str(tmp_path),
        **where,
    )
    assert (out.strip(), err.strip(), rc) == ("to-out", "to-err", 3)


def test_files_outside_cwd_are_mounted_at_same_path(engine: Engine, tmp_path: Path) -> None:
    """Inventory, private key and vault password file live outside cwd; all are found."""
    work, elsewhere, keys = tmp_path / "work", tmp_path / "elsewhere", tmp_path / "keys"
    for d in (work, elsewhere, keys):
        d.mkdir()
    inventory = elsewhere / "hosts"
    inventory.write_text(f"box1 {LOCAL_VARS}\n")
    key = keys / "id_test"
    key.write_text("not really a key\n")
    vault_pass = keys / "vault-pass"
    vault_pass.write_text("s3cr3t-vault\n")
    vaulted = make_vault("the-hidden-value", "s3cr3t-vault", tmp_path)
    (work / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  vars:\n    hidden: " + vaulted + "\n"
        "  tasks:\n"
        f"    - stat: {{path: {key}}}\n      register: k\n"
        "    - assert: {that: [k.stat.exists, \"hidden == 'the-hidden-value'\"]}\n"
    )
    out, err, rc = containerrunner.run_command(
        "ansible-playbook",
        [
            "-i",
            str(inventory),
            f"--private-key={key}",
            "--vault-password-file",
            str(vault_pass),
            "play.yml",
        ],
        host_cwd=str(work),
        **container_kwargs(engine),
    )
    assert rc == 0, out + err
    assert "ok=2" in out


def test_ask_vault_pass_answered_from_passwords(engine: Engine, tmp_path: Path) -> None:
    vaulted = make_vault("opened", "pw-123", tmp_path)
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars:\n    v: " + vaulted + "\n"
        "  tasks:\n    - debug: {msg: 'vault says {{ v }}'}\n"
    )
    out, err, rc = containerrunner.run_command(
        "ansible-playbook",
        [
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter={{ ansible_playbook_python }}",
            "--ask-vault-pass",
            "play.yml",
        ],
        passwords={r"Vault password.*:": "pw-123"},
        host_cwd=str(tmp_path),
        **container_kwargs(engine),
    )
    assert rc == 0, out + err
    assert "vault says opened" in out
    assert "pw-123" not in out


def test_plugin_docs_json(where: dict[str, Any], tmp_path: Path) -> None:
    docs, _ = containerrunner.get_plugin_docs(
        ["ansible.builtin.ping"], plugin_type="module", response_format="json",
        host_cwd=str(tmp_path), **where,
    )  # fmt: skip
    assert "ansible.builtin.ping" in docs
    assert docs["ansible.builtin.ping"]["doc"]["module"] == "ping"


def test_plugin_docs_network_ee(engine: Engine, tmp_path: Path) -> None:
    docs, _ = containerrunner.get_plugin_docs(
        ["vyos.vyos.vyos_command"], plugin_type="module", response_format="json",
        host_cwd=str(tmp_path), **container_kwargs(engine, NETWORK_EE_IMAGE),
    )  # fmt: skip
    assert "commands" in docs["vyos.vyos.vyos_command"]["doc"]["options"]


def test_plugin_list(where: dict[str, Any], tmp_path: Path) -> None:
    plugins, _ = containerrunner.get_plugin_list(
        response_format="json", plugin_type="module", host_cwd=str(tmp_path), **where
    )
    assert "ansible.builtin.ping" in plugins


def test_inventory_actions(where: dict[str, Any], tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts").write_text("[web]\nweb1 colour=blue\nweb2\n[db]\ndb1\n")
    listed, _ = containerrunner.get_inventory(
        "list", [str(inv / "hosts")], response_format="json", host_cwd=str(tmp_path), **where
    )
    assert sorted(listed["web"]["hosts"]) == ["web1", "web2"]
    host, _ = containerrunner.get_inventory(
        "host", [str(inv / "hosts")], host="web1", response_format="json",
        host_cwd=str(tmp_path), **where,
    )  # fmt: skip
    assert host == {"colour": "blue"}
    graph, _ = containerrunner.get_inventory(
        "graph", [str(inv / "hosts")], host_cwd=str(tmp_path), **where
    )
    assert "@web:" in graph and "db1" in graph


def test_ansible_config_dump_only_changed(where: dict[str, Any], tmp_path: Path) -> None:
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nforks = 17\n")
    out, _ = containerrunner.get_ansible_config(
        "dump", config_file=str(cfg), only_changed=True, host_cwd=str(tmp_path), **where
    )
    assert "DEFAULT_FORKS" in out and "17" in out
    assert "DEFAULT_TIMEOUT" not in out


def test_roles_in_playbook_dir(where: dict[str, Any], tmp_path: Path) -> None:
    meta = tmp_path / "pbdir" / "roles" / "greeter" / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: Greets\n    options:\n"
        "      name: {type: str, required: true, description: who}\n"
    )
    (meta.parent / "tasks").mkdir()
    (meta.parent / "tasks" / "main.yml").write_text("- debug: {msg: hi}\n")
    work = tmp_path / "work"
    work.mkdir()
    roles, _ = containerrunner.get_role_list(
        playbook_dir=str(tmp_path / "pbdir"), host_cwd=str(work), **where
    )
    assert "greeter" in roles
    spec, _ = containerrunner.get_role_argspec(
        "greeter", playbook_dir=str(tmp_path / "pbdir"), host_cwd=str(work), **where
    )
    assert spec["greeter"]["entry_points"]["main"]["options"]["name"]["required"] is True


@pytest.mark.parametrize("how", ["cancel", "job_timeout", "idle_timeout"])
def test_cancel_and_timeouts_leave_no_container(
    how: str, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    ready = Watcher("ready")
    options: dict[str, Any] = {"output_fd": ready}
    if how == "job_timeout":
        options["timeout"] = 3
    if how == "idle_timeout":
        options["idle_timeout"] = 3
    thread, runner = containerrunner.run_command_async(
        "sh", ["-c", "echo ready; sleep 600"], host_cwd=str(tmp_path),
        **options, **container_kwargs(engine),
    )  # fmt: skip
    assert ready.seen.wait(120), "the command never started"
    if how == "cancel":
        runner.cancel()
    thread.join(120)
    assert not thread.is_alive()
    assert runner.status == ("canceled" if how == "cancel" else "timeout")


def test_cancel_callback_local(tmp_path: Path) -> None:
    ready = Watcher("ready")
    thread, runner = containerrunner.run_command_async(
        "sh", ["-c", "echo ready; sleep 600"], host_cwd=str(tmp_path), output_fd=ready,
        cancel_callback=lambda: ready.seen.is_set(),
    )  # fmt: skip
    thread.join(60)
    assert runner.status == "canceled"


def test_secret_envvar_lands_in_no_file(where: dict[str, Any], tmp_path: Path) -> None:
    secret = "TopSecret-4711-envvar"
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    out, err, rc = containerrunner.run_command(
        "sh", ["-c", 'test "${#MY_SECRET}" = 21 && echo matched'],
        envvars={"MY_SECRET": secret}, secret_envvars=["MY_SECRET"],
        private_data_dir=str(pdd), host_cwd=str(tmp_path), **where,
    )  # fmt: skip
    assert (rc, out.strip()) == (0, "matched"), err
    assert_secret_nowhere(secret, tmp_path)


def test_interactive_stdin_passthrough(where: dict[str, Any], tmp_path: Path) -> None:
    out_buf = io.StringIO()
    out, err, rc = containerrunner.run_command(
        "sh", ["-c", "read line; echo got:$line"], input_fd=io.StringIO("hello\n"),
        output_fd=out_buf, host_cwd=str(tmp_path), **where,
    )  # fmt: skip
    assert rc == 0, err
    assert "got:hello" in out_buf.getvalue()
    assert "got:hello" in out  # the stdout artifact keeps a copy


# Waits for a size: docker < 23 (API < 1.42) sets the size of the container's terminal just
# after the container starts, so a command that asks at once may see 0 0 even on a terminal.
SHOW_TERMINAL = """
for i in $(seq 100); do s=$(stty size); [ "$s" != "0 0" ] && break; sleep 0.1; done
echo "size=$s"; tty; read line; echo "got:$line"
"""


def test_interactive_terminal_is_passed_through_with_its_size(
    where: dict[str, Any], tmp_path: Path
) -> None:
    """A terminal as input_fd (`ansible-navigator exec` gives sys.stdin): the command (or the
    engine client, with `-t`) runs on a pty of that terminal's size, typing reaches it, and
    its output goes to output_fd."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        before = termios.tcgetattr(slave)
        os.write(master, b"typed\n")  # typed ahead: reaches the command once it reads
        out_buf = io.StringIO()
        out, err, rc = containerrunner.run_command(
            "sh", ["-c", SHOW_TERMINAL], input_fd=slave, output_fd=out_buf,
            host_cwd=str(tmp_path), **where,
        )  # fmt: skip
        assert termios.tcgetattr(slave) == before  # raw only while the command ran
    finally:
        os.close(slave)
        os.close(master)
    shown = out_buf.getvalue()
    assert rc == 0, shown + err
    assert "size=33 101" in shown, shown
    assert "/dev/pts/" in shown and "got:typed" in shown, shown
    assert "size=33 101" in out  # the stdout artifact keeps a copy
    if where["process_isolation"]:
        engine = detect_engine(where["process_isolation_executable"])
        assert our_containers(engine, os.getpid()) == []


def test_unknown_option_is_refused() -> None:
    with pytest.raises(containerrunner.ConfigurationError, match="contianer_image"):
        containerrunner.run_command("true", [], contianer_image="x")


def test_missing_image_names_build_command(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(containerrunner.ImageNotFoundError, match="scripts/build-images"):
        containerrunner.run_command(
            "true", [], host_cwd=str(tmp_path), ident="nóimage-check",
            **container_kwargs(engine, "localhost/no-such-image:1"), pull="never",
        )  # fmt: skip
    left = list(Path(tempfile.gettempdir()).glob("containerrunner-nóimage--*"))
    assert not left, "runtime dir left behind"


@pytest.mark.parametrize("ident", ["../escape", "a/b", ".hidden", ""])
def test_bad_ident_is_refused_before_anything_is_made(ident: str, tmp_path: Path) -> None:
    before = set(Path(tempfile.gettempdir()).iterdir()) | set(Path("/").iterdir())
    with pytest.raises(containerrunner.ConfigurationError, match="ident"):
        containerrunner.run_command("true", [], ident=ident, private_data_dir=str(tmp_path))
    assert set(Path(tempfile.gettempdir()).iterdir()) | set(Path("/").iterdir()) == before
    assert list(tmp_path.iterdir()) == []


def test_reaper_removes_orphans(engine: Engine) -> None:
    from containerrunner.isolation.reaper import reap_orphans

    # A container labelled as ours whose owner pid does not exist.
    dead_pid = "2147483646"
    subprocess.run(
        engine.command(
            "create", "--name", "containerrunner_orphan_test", "--label", "containerrunner=1",
            "--label", "containerrunner.ident=orphan", "--label",
            f"containerrunner.owner-pid={dead_pid}", "--label",
            f"containerrunner.owner-host={__import__('socket').gethostname()}",
            "localhost/containerrunner-ee:latest", "true",
        ),
        check=True, capture_output=True,
    )  # fmt: skip
    assert "containerrunner_orphan_test" in reap_orphans(engine)
    from tests.conftest import our_containers

    assert "containerrunner_orphan_test" not in our_containers(engine)
