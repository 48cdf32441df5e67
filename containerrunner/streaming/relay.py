"""The host side of `container_transport="stream"`: a job in a container without bind mounts.

`containerize` writes a relay spec (the `<engine> run -i ... IMAGE python3 -c BOOTSTRAP` argv,
the mounts the job would have, the command, its workdir, the event FIFO, the user) into the
job's runtime dir and runs `python -m containerrunner.streaming.relay SPEC` instead of the
engine. The relay sends the mounts' files as one zip on the container's stdin, where the
standard-library bootstrap (bootstrap.py) unpacks them at their container paths and runs the
command; it then writes the command's stdout to its own stdout and the callback plugin's FIFO
lines into the host's event FIFO, so the Runner sees what it sees with bind mounts. At the
end, files new or changed under the read-write mounts come back into their host sources. The
relay exits with the command's return code (the engine's, e.g. 125, when the container never
ran the bootstrap).

Secrets: the job's prompt answers (`passwords`) and ssh key (`ssh_key`) reach the relay in
its environment (SECRETS_VARIABLE, JSON), which it removes before it starts the engine, and go
to the bootstrap once, in the header on the container's stdin: never in the spec file, an argv
or a file on the caller's side. The bootstrap answers the prompts on its own pty and loads the
key into an ssh-agent in the container (a 0600 key file there when the image has none).

Not carried: sockets (an ssh-agent socket under a mount), FIFOs and devices under a mount
(refused or skipped with a message), files deleted in the container (they stay on the host).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import zipfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

from containerrunner.streaming.archive import add_member

#: Largest payload of mounted files the relay sends.
MAX_PAYLOAD = 256 * 1024 * 1024
#: The relay's environment variable with the job's secrets (JSON: passwords, ssh_key).
SECRETS_VARIABLE = "CONTAINERRUNNER_RELAY_SECRETS"


def bootstrap_source() -> str:
    """The bootstrap's text, for `python3 -c`."""
    return resources.files("containerrunner.streaming").joinpath("bootstrap.py").read_text()


@dataclass(frozen=True)
class RelaySpec:
    engine_argv: list[str]
    mounts: list[dict[str, Any]]  # {"source", "target", "read_only"}
    command: list[str]
    cwd: str
    fifo: str | None
    user: list[int] | None
    # a scheduler adapter (containerrunner.cluster) in its own session: a stop's SIGTERM
    # reaches it through the relay and the group's SIGKILL does not cut its cleanup short
    own_session: bool = False

    def write(self, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(self), out)

    @classmethod
    def read(cls, path: str) -> RelaySpec:
        with open(path, encoding="utf-8") as fh:
            return cls(**json.load(fh))


class RelayError(Exception):
    """A mount the stream transport cannot carry, or a payload over the bound."""


def _members(source: Path, target: str) -> list[tuple[Path, str]]:
    """(host path, archive name) of everything under the mount `source` -> `target`."""
    base = target.lstrip("/")
    if not source.is_dir():
        return [(source, base)]
    found = [(source, base + "/")]
    for dirpath, dirnames, filenames in os.walk(source):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(source).as_posix()
            found.append((path, f"{base}/{rel}" + ("/" if name in dirnames else "")))
    return found


def pack_mounts(mounts: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    total = 0
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as archive:
        # the deepest mount first: where mounts overlap (a file mounted into a mounted dir)
        # its files are what the container sees, as with bind mounts; a name goes in once
        for mount in sorted(mounts, key=lambda m: len(m["target"].rstrip("/")), reverse=True):
            for path, arcname in _members(Path(mount["source"]), mount["target"]):
                if arcname.rstrip("/") in seen:
                    continue
                seen.add(arcname.rstrip("/"))
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue
                if stat.S_ISSOCK(info.st_mode):
                    raise RelayError(
                        f"{path} is a socket: container_transport='stream' cannot carry it "
                        "(give an ssh key as ssh_key, which the stream carries)"
                    )
                if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                    total += info.st_size
                    if total > MAX_PAYLOAD:
                        raise RelayError(
                            f"the mounted files reach {total} bytes at {path}, over the bound of "
                            f"{MAX_PAYLOAD} for container_transport='stream' (mount less, e.g. "
                            "run from a smaller directory)"
                        )
                add_member(archive, path, arcname)  # FIFOs and devices are skipped there
    return buffer.getvalue()


def _host_path(name: str, writable: list[dict[str, Any]]) -> Path | None:
    """The host path for the container path `/name` under a read-write mount (None: none)."""
    container = "/" + name
    for mount in sorted(writable, key=lambda m: len(m["target"]), reverse=True):
        target = mount["target"].rstrip("/")
        if container == target or container.startswith(target + "/"):
            rel = container[len(target) :].lstrip("/")
            if ".." in Path(rel).parts:
                return None
            return Path(mount["source"], rel) if rel else Path(mount["source"])
    return None


def write_back(data: bytes, writable: list[dict[str, Any]]) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            host = _host_path(member.filename.rstrip("/"), writable)
            if host is None or member.is_dir():
                continue
            mode = member.external_attr >> 16
            host.parent.mkdir(parents=True, exist_ok=True)
            if host.is_symlink():
                host.unlink()
            if stat.S_ISLNK(mode):
                if host.exists():
                    host.unlink()
                os.symlink(archive.read(member).decode(), host)
                continue
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            fd = os.open(host, flags, stat.S_IMODE(mode) & 0o777 or 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(archive.read(member))


def _feed(stdin: IO[bytes], header: dict[str, Any], payload: bytes) -> None:
    try:
        stdin.write(json.dumps(header).encode() + b"\n")
        stdin.write(payload)
        stdin.close()
    except (BrokenPipeError, OSError):  # the container is gone; its exit code says why
        pass


def take_secrets() -> dict[str, Any]:
    """The job's secrets, removed from this process's environment (the engine's client, which
    inherits it, never sees them): {"passwords": {...}, "ssh_key": TEXT}, the empty left out."""
    text = os.environ.pop(SECRETS_VARIABLE, None)
    if not text:
        return {}
    given = json.loads(text)
    return {name: given[name] for name in ("passwords", "ssh_key") if given.get(name)}


def relay(spec: RelaySpec) -> int:
    secrets = take_secrets()
    payload = pack_mounts(spec.mounts)
    writable = [m for m in spec.mounts if not m["read_only"]]
    header = {
        "command": spec.command,
        "cwd": spec.cwd,
        "fifo": spec.fifo,
        "writeback": [m["target"] for m in writable],
        "user": spec.user,
        "payload": len(payload),
        **secrets,
    }
    proc = subprocess.Popen(
        spec.engine_argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=spec.own_session,
    )
    assert proc.stdin is not None and proc.stdout is not None
    if spec.own_session:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda signum, _frame: proc.send_signal(signum))
    feeder = threading.Thread(target=_feed, args=(proc.stdin, header, payload), daemon=True)
    feeder.start()
    fifo_fd: int | None = None
    rc: int | None = None
    try:
        for line in proc.stdout:
            item = json.loads(line)
            if "o" in item:
                os.write(sys.stdout.fileno(), base64.b64decode(item["o"]))
            elif "f" in item and spec.fifo:
                if fifo_fd is None:
                    fifo_fd = os.open(spec.fifo, os.O_WRONLY)
                os.write(fifo_fd, ("\n" + item["f"] + "\n").encode())
            elif "z" in item:
                write_back(proc.stdout.read(item["z"]), writable)
            elif "rc" in item:
                rc = int(item["rc"])
    finally:
        if fifo_fd is not None:
            os.close(fifo_fd)
        engine_rc = proc.wait()
        feeder.join(timeout=5)
    return rc if rc is not None else engine_rc


def main(argv: list[str]) -> int:
    try:
        return relay(RelaySpec.read(argv[0]))
    except RelayError as exc:
        sys.stderr.write(f"containerrunner: error: {exc}\n")
        return 125
    except ValueError as exc:  # a line from the container that is not the bootstrap's
        sys.stderr.write(
            f"containerrunner: error: the container's stream is not the relay's: {exc}\n"
        )
        return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
