"""A non-root caller: rootless podman and docker through the docker group, for real.

These tests only mean something as a non-root user, so they skip as root. scripts/test-nonroot
(as root) prepares a user (scripts/setup-engine --user NAME) and runs this module as that user;
see docs/nonroot.md. Rootless podman here cannot use its default network (slirp4netns has no
/dev/net/tun for the user), so podman jobs run with container_network="none", ssh jobs with
"host" (the ssh server, tests/sshserver.py, listens on the host's 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import EngineError
from containerrunner.isolation.engine import (
    LABEL,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_UID,
    Engine,
    login_name,
)
from containerrunner.isolation.network import tun_problem
from containerrunner.isolation.reaper import list_ours, reap_orphans
from tests.conftest import (
    EE_IMAGE,
    EngineProbe,
    image_present,
    our_containers,
    require_engine,
)
from tests.integration.support import Watcher, container_kwargs, make_ssh_key
from tests.sshserver import SshServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.nonroot,
    pytest.mark.skipif(
        os.getuid() == 0, reason="run as a non-root user: scripts/test-nonroot (as root)"
    ),
]

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        colour: blue
        cacheable: true
    - ansible.builtin.copy:
        content: "made by {{ lookup('env', 'USER') | default('?', true) }}\\n"
        dest: "{{ playbook_dir }}/made.txt"
"""


# what scripts/setup-engine --user loads into the user's podman storage (docker: root's)
NETWORK_EE_IMAGE = "localhost/network-ee:latest"
PROBE_IMAGE = "localhost/containerrunner-probe:latest"  # scripts/setup-engine's probe

SSH_PLAYBOOK = """\
- hosts: target
  gather_facts: false
  tasks:
    - ansible.builtin.ping:
    - ansible.builtin.command: id -u
      register: remote
      changed_when: false
    - ansible.builtin.copy:
        content: "{{ remote.stdout }}\\n"
        dest: "{{ playbook_dir }}/remote-uid.txt"
      delegate_to: localhost
"""


def job_kwargs(engine: Engine) -> dict[str, Any]:
    """Rootless podman gets no network (its default needs /dev/net/tun); docker its default."""
    network = {"container_network": "none"} if engine.name == "podman" else {}
    return {**container_kwargs(engine), **network}


def not_mine(root: Path) -> list[str]:
    """Paths under `root` (itself included) that do not belong to this process's uid."""
    uid = os.getuid()
    paths = [root, *root.rglob("*")]
    return [str(p) for p in paths if p.lstat().st_uid != uid]


def test_the_engine_knows_it_runs_for_a_non_root_caller(engine: Engine) -> None:
    if engine.name == "podman":
        assert engine.rootless, "podman info says rootful for a non-root caller"
        assert engine.user_args(os.getuid(), os.getgid())[0] == "--userns=keep-id"
    else:
        assert engine.user_args(os.getuid(), os.getgid())[:2] == [
            "--user",
            f"{os.getuid()}:{os.getgid()}",
        ]


def test_run_command_as_the_caller(no_leftover_containers: Engine, tmp_path: Path) -> None:
    engine = no_leftover_containers
    out, err, rc = containerrunner.run_command(
        "sh", ["-c", 'id -u; echo "home=$HOME"; touch "$PWD/touched"; ansible localhost -m ping'],
        host_cwd=str(tmp_path), **job_kwargs(engine),
    )  # fmt: skip
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == str(os.getuid())
    assert lines[1] == "home=/tmp/containerrunner-home"
    assert '"ping": "pong"' in out
    assert not not_mine(tmp_path)


def test_run_playbook_files_belong_to_the_caller(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "project" / "site.yml").write_text(PLAYBOOK)
    r = containerrunner.run(private_data_dir=str(pdd), playbook="site.yml", **job_kwargs(engine))
    assert (r.status, r.rc) == ("successful", 0), r.stdout.read()
    assert (pdd / "project" / "made.txt").is_file()
    art = Path(r.config.artifact_dir)
    assert (art / "status").read_text() == "successful"
    assert any((art / "job_events").iterdir())
    assert not not_mine(tmp_path)
    assert not (pdd / "project" / ".ansible").exists(), "HOME landed in the project"


def test_get_helper(no_leftover_containers: Engine, tmp_path: Path) -> None:
    engine = no_leftover_containers
    inv = tmp_path / "hosts"
    inv.write_text("[web]\nweb1 colour=blue\n")
    listed, _ = containerrunner.get_inventory(
        "list", [str(inv)], response_format="json", host_cwd=str(tmp_path), **job_kwargs(engine)
    )
    assert listed["web"]["hosts"] == ["web1"]
    assert not not_mine(tmp_path)


def test_cancel_removes_the_container(no_leftover_containers: Engine, tmp_path: Path) -> None:
    engine = no_leftover_containers
    ready = Watcher("ready")
    thread, runner = containerrunner.run_command_async(
        "sh", ["-c", "echo ready; sleep 600"], host_cwd=str(tmp_path), output_fd=ready,
        **job_kwargs(engine),
    )  # fmt: skip
    assert ready.seen.wait(120), "the command never started"
    runner.cancel()
    thread.join(120)
    assert not thread.is_alive()
    assert runner.status == "canceled"
    assert not not_mine(tmp_path)


def test_cli_run(no_leftover_containers: Engine, tmp_path: Path) -> None:
    engine = no_leftover_containers
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "project" / "site.yml").write_text(PLAYBOOK)
    network = ["--container-network", "none"] if engine.name == "podman" else []
    proc = subprocess.run(
        [sys.executable, "-m", "containerrunner", "run", str(pdd), "-p", "site.yml",
         "--engine", engine.name, "--container-image", EE_IMAGE, *network],
        capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (pdd / "project" / "made.txt").is_file()
    assert not not_mine(tmp_path)


def test_ssh_with_the_jobs_agent(no_leftover_containers: Engine, tmp_path: Path) -> None:
    """A play over ssh, the key only in the job's ssh-agent (its socket mounted across the
    user namespace): docker's --user uid needs the passwd entry containerrunner mounts, or
    OpenSSH's client stops with `No user exists for uid`."""
    engine = no_leftover_containers
    key = make_ssh_key(tmp_path)
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "project" / "ssh.yml").write_text(SSH_PLAYBOOK)
    with SshServer(key) as server:
        (pdd / "inventory" / "hosts").write_text(
            f"target ansible_host=127.0.0.1 ansible_port={server.port} "
            f"ansible_user={login_name(os.getuid())} ansible_python_interpreter={sys.executable} "
            "ansible_ssh_pipelining=true ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null'"
            "\n"
        )
        r = containerrunner.run(
            private_data_dir=str(pdd), playbook="ssh.yml", ssh_key=key,
            container_network="host", envvars={"ANSIBLE_HOST_KEY_CHECKING": "False"},
            **container_kwargs(engine),
        )  # fmt: skip
        logins = list(server.logins)
    assert (r.status, r.rc) == ("successful", 0), r.stdout.read()
    assert logins and set(logins) == {login_name(os.getuid())}
    assert (pdd / "project" / "remote-uid.txt").read_text() == f"{os.getuid()}\n"
    assert not not_mine(tmp_path)


def test_exec_in_the_network_ee_as_the_caller(
    no_leftover_containers: Engine,
    request: pytest.FixtureRequest,
    engine_probes: dict[str, EngineProbe],
    tmp_path: Path,
) -> None:
    """`containerrunner exec` in the network EE (from the user's own podman storage): the
    caller's uid and name, the collections listed, stdin passed through, files owned. One
    container per engine for both (rootless podman starts are slow)."""
    engine = no_leftover_containers
    require_engine(request, engine_probes, engine.name, NETWORK_EE_IMAGE)
    network = ["--container-network", "none"] if engine.name == "podman" else []
    script = (
        'id -u; id -un; echo "home=$HOME"; cat >from-stdin; '
        "ansible-galaxy collection list --format json 2>/dev/null"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "containerrunner", "exec", "--engine", engine.name,
         "--image", NETWORK_EE_IMAGE, *network, "--", "sh", "-c", script],
        input="typed\n", capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    uid, name, home, listing = proc.stdout.split("\n", 3)
    assert [uid, name, home] == [
        str(os.getuid()),
        login_name(os.getuid()),
        "home=/tmp/containerrunner-home",
    ]
    listed = json.loads(listing)
    names = {collection for found in listed.values() for collection in found}
    assert {"cisco.ios", "arista.eos", "ansible.netcommon"} <= names
    assert (tmp_path / "from-stdin").read_text() == "typed\n"
    assert not not_mine(tmp_path)


@pytest.mark.podman
def test_default_network_without_tun_says_what_to_do(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe], tmp_path: Path
) -> None:
    """Rootless podman's default network needs /dev/net/tun: without it the job is refused
    before a container starts, with what is missing and what works instead; the CLI says
    the same and exits 1 without a traceback."""
    engine = require_engine(request, engine_probes, "podman")
    problem = tun_problem()
    if problem is None:
        pytest.skip("this user can open /dev/net/tun: podman's default network works here")
    with pytest.raises(EngineError) as raised:
        containerrunner.run_command("true", [], host_cwd=str(tmp_path), **container_kwargs(engine))
    message = str(raised.value)
    for part in ("rootless podman", "/dev/net/tun", problem, "container_network='none'",
                 "container_network='host'"):  # fmt: skip
        assert part in message
    proc = subprocess.run(
        [sys.executable, "-m", "containerrunner", "exec", "--engine", "podman", "--image",
         EE_IMAGE, "--", "true"],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "/dev/net/tun" in proc.stderr and "--container-network none" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert our_containers(engine) == []


def test_cleanup_leaves_another_users_containers(engine: Engine) -> None:
    """An orphan labelled with another uid (as a docker-group neighbour's would be) is not
    the caller's: the reaper neither lists nor removes it; the caller's own orphan goes."""
    dead_pid = 2**22 + 17  # above the usual pid_max: no such process
    host = socket.gethostname()
    made = []
    # never started: the setup's 2 MB busybox image where present (a rootless podman on vfs
    # copies the whole image for each container it creates)
    image = PROBE_IMAGE if image_present(engine, PROBE_IMAGE) else EE_IMAGE
    for who, uid in (("theirs", os.getuid() + 1), ("mine", os.getuid())):
        name = f"containerrunner_nonroot_{who}_{os.getpid()}"
        labels = {LABEL: "1", LABEL_OWNER_PID: str(dead_pid), LABEL_OWNER_HOST: host}
        labels[LABEL_OWNER_UID] = str(uid)
        flags = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        subprocess.run(
            engine.command("create", "--name", name, *flags, image, "true"),
            check=True, capture_output=True,
        )  # fmt: skip
        made.append(name)
    try:
        names = [c["name"] for c in list_ours(engine)]
        assert made[1] in names and made[0] not in names
        reaped = reap_orphans(engine)
        assert made[1] in reaped and made[0] not in reaped
        exists = subprocess.run(
            engine.command("container", "inspect", made[0]), capture_output=True, check=False
        )
        assert exists.returncode == 0, "another user's container was removed"
    finally:
        for name in made:
            subprocess.run(engine.command("rm", "-f", name), capture_output=True, check=False)
