"""A real image registry on 127.0.0.1 for the pull tests: Debian's `docker-registry` with
htpasswd (bcrypt) auth and a self-signed certificate made here.

Both engines trust the certificate through `/etc/docker/certs.d/127.0.0.1:PORT/ca.crt`
(docker's daemon reads it per pull, no restart; podman's containers/image reads the same
directory). The port is free and unique, so the file touches nobody else; it is removed at
teardown, with the registry process and its storage.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.netns import enter_args

REGISTRY_BIN = "/usr/bin/docker-registry"
CERTS_D = Path("/etc/docker/certs.d")
USER = "crtest"


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    username: str
    password: str
    ca_file: Path

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"


def missing_tools() -> list[str]:
    """What the registry fixture needs and this machine lacks (see scripts/setup-engine)."""
    need = {"docker-registry": REGISTRY_BIN, "htpasswd": "htpasswd", "openssl": "openssl"}
    return [pkg for pkg, exe in need.items() if shutil.which(exe) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True, timeout=60)


def _wait_listening(proc: subprocess.Popen[str], log: Path) -> None:
    """Until the registry logs that it listens (read from its stderr; fails if it exits
    first), then its remaining output is copied to `log` by a thread (keeps the pipe drained)."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if "listening on" in line:
            break
    else:
        proc.wait()
        tail = "".join(seen)[-2000:]
        raise RuntimeError(f"docker-registry exited with {proc.returncode}: {tail}")
    stream = proc.stderr

    def drain() -> None:
        with open(log, "a") as out:
            out.writelines(seen)
            for rest in stream:
                out.write(rest)

    threading.Thread(target=drain, daemon=True).start()


def _config(root: Path, address: str, port: int) -> str:
    return f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}/data
  delete:
    enabled: true
http:
  addr: {address}:{port}
  tls:
    certificate: {root}/cert.pem
    key: {root}/key.pem
auth:
  htpasswd:
    realm: containerrunner-test
    path: {root}/htpasswd
"""


def start_registry(
    root: Path, password: str, address: str = "127.0.0.1", netns: str | None = None
) -> tuple[Registry, subprocess.Popen[str]]:
    """The registry on `address` (127.0.0.1: a free port; else an address of the named
    network namespace `netns` that the test made, port 5000 there, started with nsenter)."""
    port = _free_port() if netns is None else 5000
    host = f"{address}:{port}"
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={address}", "-addext", f"subjectAltName=IP:{address}",
        "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
    )  # fmt: skip
    _run("htpasswd", "-B", "-i", "-c", str(root / "htpasswd"), USER, stdin=password)
    (root / "config.yml").write_text(_config(root, address, port))
    where = [] if netns is None else enter_args(netns)
    certs = CERTS_D / host
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "cert.pem", certs / "ca.crt")
    proc = subprocess.Popen(
        [*where, REGISTRY_BIN, "serve", str(root / "config.yml")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(proc, root / "registry.log")
    except BaseException:
        stop_registry(proc, host)
        raise
    return Registry(host, USER, password, certs / "ca.crt"), proc


def stop_registry(proc: subprocess.Popen[str], host: str) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(CERTS_D / host, ignore_errors=True)


def running_registry(
    password: str, address: str = "127.0.0.1", netns: str | None = None
) -> Iterator[tuple[Registry, subprocess.Popen[str]]]:
    """A started registry (yielded with its process), stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cr-registry-"))
    try:
        registry, proc = start_registry(root, password, address, netns)
        try:
            yield registry, proc
        finally:
            stop_registry(proc, registry.host)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def login_env(engine_name: str, auth: Path) -> dict[str, str]:
    """The environment variable that points `engine_name`'s client at its own auth store in
    `auth` (podman REGISTRY_AUTH_FILE, docker DOCKER_CONFIG), leaving the user's alone."""
    if engine_name == "docker":
        return {"DOCKER_CONFIG": str(auth)}
    return {"REGISTRY_AUTH_FILE": str(auth / "auth.json")}


# The stand-in `ansible-playbook` of the tiny image: `containerrunner run` gets a job that
# starts and ends (rc 0), with no Ansible in the image.
FAKE_PLAYBOOK = b'#!/bin/sh\necho "fake ansible-playbook $*"\n'


def tiny_image_tar(path: Path) -> Path:
    """A small image filesystem for `<engine> import`: busybox-static (also as /bin/sh and
    /bin/sleep) and a stand-in /usr/bin/ansible-playbook (FAKE_PLAYBOOK)."""
    with tarfile.open(path, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "sleep"):  # sleep: a Session's idle command
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        script = tarfile.TarInfo("usr/bin/ansible-playbook")
        script.mode, script.size = 0o755, len(FAKE_PLAYBOOK)
        tar.addfile(script, io.BytesIO(FAKE_PLAYBOOK))
    return path


def push(engine_cmd: list[str], source: str, target: str, registry: Registry) -> None:
    """Tag `source` as `target` and push it with a throwaway login (its own auth file/config
    dir), then drop the local tag so the tests decide what is present."""
    auth = Path(tempfile.mkdtemp(prefix="cr-registry-auth-"))
    try:
        os.chmod(auth, 0o700)
        if os.path.basename(engine_cmd[0]) == "docker":
            base = [*engine_cmd, "--config", str(auth)]
            login_opts: list[str] = []
        else:
            base = engine_cmd
            login_opts = ["--authfile", str(auth / "auth.json")]
        _run(*base, "tag", source, target)
        _run(*base, "login", *login_opts, "--username", registry.username,
             "--password-stdin", registry.host, stdin=registry.password)  # fmt: skip
        _run(*base, "push", *login_opts, target)
        _run(*base, "rmi", target)
    finally:
        shutil.rmtree(auth, ignore_errors=True)
