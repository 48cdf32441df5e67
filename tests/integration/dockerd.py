"""A private docker daemon for the fault trial that restarts one (not a test module).

The machine's dockerd runs everybody's jobs, so the trial never touches it: it starts a dockerd
of its own on a temp dir (its own data root, exec root, pid file and socket), in a network
namespace of its own (`unshare --net`; no bridge, no iptables: nothing of the machine's
network changes, and the shared `docker0` stays) with the ulimits scripts/setup-engine
gives the shared one, and loads the EE image into it from the shared daemon
(`docker save | docker -H ... load`). `kill()` SIGKILLs it as a crash would; `start()` starts it
again on the same roots. `close()` stops it and everything it started (containerd, shims), and
removes its dirs and the mounts under them, whatever state the trial left it in.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.netns import enter_args

START_LIMIT = 90.0  # seconds for a dockerd to answer (a loaded machine is slow)


def _ulimit_args() -> list[str]:
    """The --default-ulimit flags scripts/setup-engine gives the shared dockerd."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    args = ["--default-ulimit", f"nofile={soft}:{hard}"]
    conf = (
        Path(os.environ.get("CONTAINERS_CONF", "")) if os.environ.get("CONTAINERS_CONF") else None
    )
    if conf is not None and conf.is_file():
        for word in conf.read_text().replace('"', " ").split():
            if word.startswith("nproc="):
                args += ["--default-ulimit", word]
    return args


def _wait_exit(pid: int, limit: float) -> bool:
    """Wait for process `pid` (not our child) to exit; whether it did within `limit`."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], limit)
        return bool(readable)
    finally:
        os.close(pidfd)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class PrivateDockerd:
    """`netns`: run it in that named network namespace (`nsenter`, tests/netns.py)
    instead of an anonymous one; `listen`: a further `-H` address, e.g. tcp://NS-IP:2375;
    `hostname`: its own UTS namespace with that name (a swarm node's name)."""

    def __init__(
        self,
        image: str | None,
        netns: str | None = None,
        listen: tuple[str, ...] = (),
        hostname: str | None = None,
    ) -> None:
        self.netns, self.listen, self.hostname = netns, listen, hostname
        self.root = Path(tempfile.mkdtemp(prefix="crtest-dockerd-"))
        self.data, self.exec_root = self.root / "data", self.root / "exec"
        self.pidfile, self.socket = self.root / "docker.pid", self.root / "docker.sock"
        self.log = self.root / "dockerd.log"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.load_seconds = 0.0
        try:
            self.start()
            began = time.monotonic()
            if image is not None:  # None: an empty daemon (a swarm node pulls its images)
                self._load(image)
            self.load_seconds = time.monotonic() - began
        except BaseException:
            self.close()
            raise

    def client(self, *args: str) -> list[str]:
        return ["docker", "-H", self.host, *args]

    def answers(self) -> bool:
        proc = subprocess.run(self.client("version"), capture_output=True, timeout=30, check=False)
        return proc.returncode == 0

    def start(self) -> None:
        """Start dockerd on the roots and wait until it answers (watching its exit, too)."""
        assert self.proc is None or self.proc.poll() is not None, "dockerd runs already"
        self._forget_dead_containerd()
        # its own network namespace: a dockerd started with --bridge=none deletes the
        # `docker0` link it finds (moby's removeDefaultBridgeInterface), which in the
        # machine's namespace is the shared daemon's bridge
        where = self._netns_args()
        if self.hostname:
            where += ["unshare", "--uts", "sh", "-c", f'hostname {self.hostname} && exec "$@"', "-"]
        argv = [
            *where,
            "dockerd",
            "--data-root", str(self.data), "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile), "-H", self.host,
            *[arg for address in self.listen for arg in ("-H", address)],
            *(["--tls=false"] if self.listen else []),  # plain tcp: inside a private netns
            "--bridge=none", "--iptables=false", "--ip6tables=false", *_ulimit_args(),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + START_LIMIT
        while not self.answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited at start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"dockerd did not answer in {START_LIMIT:g} s: {self.log_tail()}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.2)  # wakes at once if it exits

    def _netns_args(self) -> list[str]:
        if self.netns:
            return enter_args(self.netns)
        return ["unshare", "--net"]

    def kill(self) -> None:
        """SIGKILL dockerd, as a crash would (its containerd dies with it; shims live on)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._forget_dead_containerd()

    def restart(self) -> None:
        self.kill()
        self.start()

    def _forget_dead_containerd(self) -> None:
        """dockerd reuses the containerd its pid file names while that pid exists; a killed
        one may linger as a zombie until init reaps it (a service manager would): wait for its
        exit and drop the pid file, as its successor would otherwise wait on a dead socket."""
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        pid = _read_pid(pidfile)
        if pid is None:
            return
        if not _wait_exit(pid, 30):
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 30)
        pidfile.unlink(missing_ok=True)

    def _load(self, image: str) -> None:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        assert save.stdout is not None
        load = subprocess.run(self.client("load", "-q"), stdin=save.stdout, capture_output=True)
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save {image} | docker -H {self.host} load failed: {load}")

    def log_tail(self, lines: int = 8) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def processes(self) -> list[int]:
        """Our processes still running on these roots: dockerd, containerd, the shims and
        what runs in them (their command lines name the roots)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if str(self.root).encode() in cmdline:
                    found.append(int(entry))
        return found

    def close(self) -> None:
        """Stop the daemon (TERM, then KILL), its containerd and shims; unmount what it
        mounted under the roots; remove the roots."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 30)
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.root) + "/")
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
