"""Secrets over the stream (issue 14): `passwords` and `ssh_key` with
container_transport='stream' and through the worker, in the project's EE with podman and
docker. The play needs both: a private `vars_prompt` the bootstrap answers on its pty, and
`ssh-add -L` in the container listing the caller's key. Afterwards no returned line, no output
and no file on the caller's side (private data dir, artifacts, runtime dirs, what appeared in
the temp dir) holds the answer's marker, the env marker or a line of the private key.

A play over ssh to the test's SSH server (tests/sshserver.py) logs in with the key only.
The fallback without ssh-agent in the image (a 0600 key file) runs the bootstrap itself on the
host with a PATH that has python3 only. Remote engines: tests/integration/test_remote_engine.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner import streaming
from containerrunner.isolation.engine import Engine, login_name
from containerrunner.streaming.relay import bootstrap_source
from tests.integration.support import (
    LOCAL_VARS,
    container_kwargs,
    files_containing,
    make_ssh_key,
    new_in_temp,
    our_temp_dirs,
    temp_entries,
)

ANSWER = "Stream-Answer-Marker-4e7b"
ENV = "Stream-Env-Marker-4e7b"

#: a play on HOSTS whose first task checks the (private) prompt's answer
PROMPTED_PLAY = """\
- hosts: {hosts}
  gather_facts: false
  vars_prompt:
    - name: favourite
      prompt: Favourite colour
      private: true
  tasks:
    - name: The prompt was answered
      ansible.builtin.assert:
        that: favourite | hash('sha1') == answer_sha1
"""

PLAY = (
    PROMPTED_PLAY.format(hosts="all")
    + """\
    - name: The key is in the container's agent
      ansible.builtin.command: ssh-add -L
      register: agent
      changed_when: false
    - name: It is the caller's key
      ansible.builtin.assert:
        that: agent.stdout.split()[:2] == public_key.split()[:2]
"""
)


@dataclass
class SecretJob:
    pdd: Path
    key: str
    public_key: str
    before: set[Path]
    tmp_path: Path

    def kwargs(self) -> dict[str, Any]:
        return {
            "private_data_dir": str(self.pdd),
            "playbook": "site.yml",
            "passwords": {"Favourite colour": ANSWER},
            "ssh_key": self.key,
            "envvars": {"STREAM_TOKEN": ENV},
            "extravars": {
                "answer_sha1": hashlib.sha1(ANSWER.encode()).hexdigest(),
                "public_key": self.public_key,
            },
            "quiet": True,
        }

    def assert_no_secret(self, *texts: bytes | str, roots: tuple[Path, ...] = ()) -> None:
        """No marker nor key line in `texts` nor in a file on the caller's side."""
        swept = [self.pdd, *roots, *new_in_temp(self.before, self.tmp_path), *our_temp_dirs()]
        key_lines = [line for line in self.key.splitlines() if "PRIVATE KEY" not in line]
        for secret in [ANSWER, ENV, *key_lines]:  # the key by its own lines (other tests'
            # private keys may appear in the shared temp dir meanwhile)
            assert not files_containing(secret, *swept), secret
            for text in texts:
                data = text.encode() if isinstance(text, str) else text
                assert secret.encode() not in data, secret


def secret_job(tmp_path: Path) -> SecretJob:
    before = temp_entries()
    tmp_path.mkdir(exist_ok=True)
    secret_dir = tmp_path / "secret"  # the caller's own key, outside what is swept
    secret_dir.mkdir(mode=0o700)
    key = make_ssh_key(secret_dir)
    (secret_dir / "key").write_text(key)
    (secret_dir / "key").chmod(0o600)
    public = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(secret_dir / "key")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (secret_dir / "key").unlink()
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "project" / "site.yml").write_text(PLAY)
    (pdd / "inventory" / "hosts").write_text(f"box {LOCAL_VARS}\n")
    return SecretJob(pdd, key, public, before, tmp_path)


def assert_played(r: containerrunner.Runner, job: SecretJob) -> str:
    with r.stdout as fh:
        out = fh.read()
    assert (r.status, r.rc) == ("successful", 0), out
    ok = {
        e["event_data"]["task"]
        for e in r.events
        if e["event"] == "runner_on_ok" and "task" in e.get("event_data", {})
    }
    assert {"The prompt was answered", "It is the caller's key"} <= ok
    return out


def test_a_streamed_job_answers_prompts_and_holds_the_key(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    job = secret_job(tmp_path)
    r = containerrunner.run(
        **job.kwargs(), ident="streamed", container_transport="stream", **container_kwargs(engine)
    )
    out = assert_played(r, job)
    assert "Favourite colour" in out  # the prompt is in the output, its answer is not
    assert not our_temp_dirs()  # the runtime dir (relay spec) is gone
    job.assert_no_secret(out)


SSH_PLAY = (
    PROMPTED_PLAY.format(hosts="target")
    + """\
    - name: Over ssh with the key from the container's agent
      ansible.builtin.command: id -u
      register: remote_uid
      changed_when: false
"""
)


def test_a_streamed_job_logs_in_over_ssh_with_its_key(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    """A play whose host is the test's SSH server (on 127.0.0.1; the container on the host's
    network): only `ssh_key` logs in there, so the key reached the container's ssh client."""
    pytest.importorskip("paramiko")
    from tests.sshserver import SshServer

    job = secret_job(tmp_path)
    (job.pdd / "project" / "site.yml").write_text(SSH_PLAY)
    with SshServer(job.key) as server:
        (job.pdd / "inventory" / "hosts").write_text(
            f"target ansible_host=127.0.0.1 ansible_port={server.port} "
            f"ansible_user={login_name(os.getuid())} ansible_python_interpreter={sys.executable} "
            "ansible_ssh_pipelining=true ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null'"
            "\n"
        )
        kwargs = job.kwargs()
        kwargs["envvars"] = {**kwargs["envvars"], "ANSIBLE_HOST_KEY_CHECKING": "False"}
        r = containerrunner.run(
            **kwargs, container_transport="stream", container_network="host",
            **container_kwargs(engine),
        )  # fmt: skip
        logins = list(server.logins)
    with r.stdout as fh:
        out = fh.read()
    assert (r.status, r.rc) == ("successful", 0), out
    assert logins and set(logins) == {login_name(os.getuid())}
    uids = [
        e["event_data"]["res"]["stdout"]
        for e in r.events
        if e["event"] == "runner_on_ok" and e["event_data"].get("task", "").startswith("Over ssh")
    ]
    assert uids == [str(os.getuid())]
    job.assert_no_secret(out)


ASK = (
    "import getpass, hashlib, sys; print(sys.prefix); "
    "print(hashlib.sha1(getpass.getpass('Password: ').encode()).hexdigest())"
)


def test_run_command_answers_a_prompt_in_a_streamed_container(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    before = temp_entries()
    out, err, rc = containerrunner.run_command(
        "python3", ["-c", ASK], passwords={r"Password: ?$": ANSWER},
        container_transport="stream", host_cwd=str(tmp_path), **container_kwargs(engine),
    )  # fmt: skip
    assert rc == 0, out + err
    assert hashlib.sha1(ANSWER.encode()).hexdigest() in out
    assert out.splitlines()[0] != sys.prefix  # the EE's python (/opt/ansible), not ours
    assert ANSWER not in out + err
    assert not files_containing(ANSWER, tmp_path, *new_in_temp(before, tmp_path))


def test_the_worker_carries_them_to_a_streamed_container(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    job = secret_job(tmp_path)
    sent = io.BytesIO()
    kwargs = {**job.kwargs(), "container_transport": "stream", **container_kwargs(engine)}
    ident = streaming.transmit(sent, **kwargs)
    back = io.BytesIO()
    worked = streaming.worker(io.BytesIO(sent.getvalue()), back)
    assert (worked.status, worked.rc) == ("successful", 0), worked.job_explanation
    caller = tmp_path / "caller"
    done = streaming.process(
        io.BytesIO(back.getvalue()), private_data_dir=str(caller), ident=ident, quiet=True
    )
    assert (done.status, done.rc) == ("successful", 0)
    tasks = {e["event_data"].get("task") for e in done.events if e["event"] == "runner_on_ok"}
    assert "It is the caller's key" in tasks
    job.assert_no_secret(back.getvalue(), roots=(caller,))


def _bootstrap(header: dict[str, Any], path: str, python: str = sys.executable) -> tuple[str, int]:
    """Run the bootstrap as the relay does (header and an empty zip on stdin), with PATH
    `path`: (the command's output, the rc it reported, else its own exit code)."""
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    payload = buffer.getvalue()
    header = {"cwd": "/", "fifo": None, "writeback": [], "user": None, **header}
    header["payload"] = len(payload)
    done = subprocess.run(
        [python, "-c", bootstrap_source()],
        input=json.dumps(header).encode() + b"\n" + payload,
        capture_output=True, env={**os.environ, "PATH": path}, timeout=60,
    )  # fmt: skip
    assert ANSWER.encode() not in done.stdout and ANSWER.encode() not in done.stderr
    out, rc, back = "", done.returncode, io.BytesIO(done.stdout)
    for line in back:
        item = json.loads(line)
        if "o" in item:
            out += base64.b64decode(item["o"]).decode()
        elif "z" in item:
            back.read(item["z"])
        elif "rc" in item:
            rc = item["rc"]
    return out + done.stderr.decode(), rc


CHECK_KEY = """\
import getpass, hashlib, os, stat
answer = getpass.getpass("Password: ")
print("answer", hashlib.sha1(answer.encode()).hexdigest())
path = os.environ["ANSIBLE_PRIVATE_KEY_FILE"]
print("mode", oct(stat.S_IMODE(os.stat(path).st_mode)), "agent", "SSH_AUTH_SOCK" in os.environ)
print("key", hashlib.sha1(open(path, "rb").read()).hexdigest(), path)
"""


def test_without_ssh_agent_the_bootstrap_gives_a_0600_key_file(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"  # python3 only: no ssh-agent, no ssh-add
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    key = make_ssh_key(tmp_path)
    out, rc = _bootstrap(
        {
            "command": ["python3", "-c", CHECK_KEY],
            "passwords": {r"Password: ?$": ANSWER},
            "ssh_key": key,
        },
        str(bindir),
    )
    assert rc == 0, out
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["answer"] == hashlib.sha1(ANSWER.encode()).hexdigest()
    assert lines["mode"] == "0o600 agent False"
    digest, path = lines["key"].split()
    assert digest == hashlib.sha1(key.encode()).hexdigest()
    assert not os.path.exists(os.path.dirname(path))  # removed when the command ended


CHECK_AGENT = """\
import getpass, hashlib, os, stat, subprocess
answer = getpass.getpass("Password: ")
print("answer", hashlib.sha1(answer.encode()).hexdigest())
print("uid", os.getuid())
sock = os.environ["SSH_AUTH_SOCK"]
info = os.stat(os.path.dirname(sock))
print("dir", info.st_uid, oct(stat.S_IMODE(info.st_mode)))
print("listed", subprocess.run(["ssh-add", "-L"], capture_output=True, text=True).stdout.strip())
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run the job as another uid")
def test_the_bootstrap_runs_the_agent_and_the_command_as_the_jobs_user(tmp_path: Path) -> None:
    """docker as a non-root caller runs the command as the caller's uid (the header's
    `user`): the agent, its dir and the pty are that user's."""
    job = secret_job(tmp_path)
    nobody = 65534
    out, rc = _bootstrap(
        {
            "command": ["/usr/bin/python3", "-c", CHECK_AGENT],
            "passwords": {r"Password: ?$": ANSWER},
            "ssh_key": job.key,
            "user": [nobody, nobody],
        },
        os.environ["PATH"],
        python="/usr/bin/python3",  # the system's, which that user can run (not the venv's)
    )
    assert rc == 0, out
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines.get("answer") == hashlib.sha1(ANSWER.encode()).hexdigest(), out
    assert lines["uid"] == str(nobody)
    assert lines["dir"] == f"{nobody} 0o700"
    assert lines["listed"].split()[:2] == job.public_key.split()[:2]


def test_a_key_ssh_add_refuses_ends_the_bootstrap_with_a_clear_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    header = {"command": ["true"], "cwd": "/", "fifo": None, "writeback": [], "user": None}
    header |= {"payload": len(buffer.getvalue()), "ssh_key": "not a key"}
    done = subprocess.run(
        [sys.executable, "-c", bootstrap_source()],
        input=json.dumps(header).encode() + b"\n" + buffer.getvalue(),
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert b"ssh_key could not be loaded" in done.stderr
    assert b"not a key" not in done.stdout + done.stderr
