"""Podman's REST API service, which podman-py talks to: found, or started for this process.

Where the API is (`endpoint()`): `CONTAINER_HOST` when it answers, else the engine's own socket
(`/run/podman/podman.sock` for root, `$XDG_RUNTIME_DIR/podman/podman.sock` rootless) when it
answers, else a private `podman system service --time=0 unix://<dir>/podman.sock` started for
the life of this process: `<dir>` is a 0700 `tempdirs` service dir
(`containerrunner.service-*`, owner record inside), the service tells us it is ready through
systemd's notify protocol (a datagram on `NOTIFY_SOCKET`, no polling), and it is stopped at
exit (`atexit`) with the dir removed. Its environment names the
dir, so when this process is SIGKILLed the next job's `tempdirs.reap_stale()` stops it (as it
stops a dead owner's host-job processes). The service inherits `CONTAINERS_CONF`.

None when no service can be had (no podman, the service fails to start): the caller uses the
CLI then (see `client.py`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from containerrunner import tempdirs
from containerrunner.isolation.engine import use_project_containers_conf

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
PING_TIMEOUT = 5.0
# In the service's environment: its dir, for reap_stale (tempdirs.stop_job_processes) when
# this process died without stopping it.
SERVICE_DIR_VARIABLE = "CONTAINERRUNNER_PODMAN_SERVICE_DIR"


@dataclass
class PrivateService:
    """A `podman system service` this process started."""

    proc: subprocess.Popen[bytes]
    directory: str

    @property
    def url(self) -> str:
        return f"unix://{os.path.join(self.directory, 'podman.sock')}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        tempdirs.remove_dir(self.directory)


#: sockaddr_un's sun_path is 108 bytes on Linux, with its terminating NUL
MAX_UNIX_PATH = 107

_lock = threading.Lock()
_private: PrivateService | None = None


def default_socket() -> str:
    """The socket podman's own `podman.socket` unit listens on for this user."""
    if os.geteuid() == 0:
        return "/run/podman/podman.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(runtime, "podman", "podman.sock")


def unix_answers(path: str, timeout: float = PING_TIMEOUT) -> bool:
    """Whether an API service answers `GET /_ping` with 200 on unix socket `path`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            return sock.recv(64).split(b" ")[1:2] == [b"200"]
    except (OSError, IndexError):
        return False


def url_answers(url: str) -> bool:
    """Whether the service at `url` answers; only `unix://` URLs are pinged here (another
    scheme, e.g. ssh://, is taken as given: podman-py's errors tell later)."""
    for prefix in ("unix://", "http+unix://"):
        if url.startswith(prefix):
            return unix_answers(url[len(prefix) :])
    return True


def endpoint(executable: str) -> tuple[str, str] | None:
    """(URL, where it came from) of a podman API service that answers, starting the private
    one when neither CONTAINER_HOST nor the host's socket answers; None when none can be had."""
    host = os.environ.get("CONTAINER_HOST")
    if host and url_answers(host):
        return host, "CONTAINER_HOST"
    sock = default_socket()
    if unix_answers(sock):
        return f"unix://{sock}", "the host's podman.socket"
    private = private_service(executable)
    return (private.url, "a private podman service") if private is not None else None


def private_service(executable: str) -> PrivateService | None:
    """This process's private service, started (again) when it is not running."""
    global _private
    with _lock:
        if _private is not None and _private.proc.poll() is None:
            return _private
        if _private is not None:
            log.debug("the private podman service (pid %d) ended", _private.proc.pid)
            _private.stop()
            _private = None
        _private = _start(executable)
        return _private


def current_private() -> PrivateService | None:
    """The private service this process started, if any (tests stop it to see a restart)."""
    return _private


def stop_private() -> None:
    """Stop this process's private service (at exit; tests)."""
    global _private
    with _lock:
        if _private is not None:
            _private.stop()
            _private = None


atexit.register(stop_private)


def _start(executable: str) -> PrivateService | None:
    use_project_containers_conf()
    directory = tempdirs.make_dir(tempdirs.service_dir_path("podman"))
    notify_path = os.path.join(directory, "notify")
    sock_url = f"unix://{os.path.join(directory, 'podman.sock')}"
    env = {**os.environ, "NOTIFY_SOCKET": notify_path, SERVICE_DIR_VARIABLE: directory + "/"}
    env.pop("CONTAINER_HOST", None)
    if len(os.fsencode(os.path.join(directory, "podman.sock"))) >= MAX_UNIX_PATH:
        # a deep TMPDIR: no unix socket can live there; the CLI it is
        log.debug("no private podman service: %s is too deep for a unix socket", directory)
        tempdirs.remove_dir(directory)
        return None
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        try:
            proc = subprocess.Popen(
                [executable, "system", "service", "--time=0", sock_url],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            log.debug("cannot start `%s system service`: %s", executable, exc)
            tempdirs.remove_dir(directory)
            return None
        service = PrivateService(proc, directory)
        if not _wait_ready(notify, proc):
            log.debug("`%s system service` did not become ready; not used", executable)
            service.stop()
            return None
    log.debug(
        "started a private podman service (pid %d) at %s in %.3f s",
        proc.pid,
        service.url,
        time.monotonic() - started,
    )
    return service


def _wait_ready(notify: socket.socket, proc: subprocess.Popen[bytes]) -> bool:
    """Wait for the service's READY=1 (sd_notify) or its exit (its pidfd), READY_TIMEOUT."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            readable = select.select([notify.fileno(), pidfd], [], [], left)[0]
            if pidfd in readable or not readable:
                return False
            if b"READY=1" in notify.recv(4096).split(b"\n"):
                return True
        return False
    finally:
        os.close(pidfd)
