# The zero-install worker inside the EE container: run with `python3 -c <this file's text>`
# by containerrunner's relay (streaming/relay.py), in an image where containerrunner is not
# installed. Standard library only, Python 3.10+; containerrunner reads it as text (`SOURCE`
# in relay.py) and never runs it on the host.
#
# In (stdin, binary): one JSON line {"command": [...], "cwd": DIR, "fifo": PATH or null,
# "writeback": [DIR or FILE, ...], "user": [UID, GID] or null, "payload": N}, then N bytes of
# a zip whose member names are absolute paths without their leading "/" (the files the job
# would see through bind mounts). The job's environment comes from the container's.
# Out (stdout, binary): JSON lines {"o": BASE64} (the command's stdout), {"f": LINE} (a line
# the callback plugin wrote to the event FIFO), then {"z": N} followed by N bytes of a zip of
# the files under "writeback" (regular files and links) that are new or changed, then
# {"rc": RC}. The command's stderr is this process's stderr.
import base64
import io
import json
import os
import select
import stat
import subprocess
import sys
import threading
import zipfile
from typing import IO, Any

OUT = sys.stdout.buffer
LOCK = threading.Lock()


def send(obj: dict[str, Any], raw: bytes = b"") -> None:
    with LOCK:
        OUT.write(json.dumps(obj).encode() + b"\n" + raw)
        OUT.flush()


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            raise SystemExit("containerrunner bootstrap: the job's payload is cut short")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


UNPACKED: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) as unpacked


def unpack(data: bytes, user: list[int] | None) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            path = "/" + member.filename.lstrip("/")
            mode = member.external_attr >> 16
            if member.filename.endswith("/"):
                os.makedirs(path, exist_ok=True)
            elif stat.S_ISLNK(mode):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(archive.read(member).decode(), path)
                continue
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as out:
                    out.write(archive.read(member))
                done = os.stat(path)
                UNPACKED[path] = (done.st_size, done.st_mtime_ns)
            os.chmod(path, stat.S_IMODE(mode) & 0o777 if mode else 0o700)
            if user:
                os.chown(path, user[0], user[1])


def own_parents(paths: list[str], user: list[int]) -> None:
    """Directories made for the payload belong to the job's user, as mounted ones would."""
    for path in paths:
        while path not in ("/", ""):
            try:
                os.chown(path, user[0], user[1])
            except OSError:
                break
            path = os.path.dirname(path)


def relay_fifo(fd: int, stop: int) -> None:
    buffer = b""
    while True:
        ready, _, _ = select.select([fd, stop], [], [])
        chunk = b""
        if fd in ready:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:  # a writer still has it open, nothing to read
                chunk = b""
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                send({"f": line.decode("utf-8", "replace")})
        if not chunk and stop in ready:
            return


def pack(paths: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root in paths:
            if os.path.isdir(root):
                walked = list(os.walk(root))
            else:
                walked = [(os.path.dirname(root), [], [os.path.basename(root)])]
            for dirpath, dirnames, filenames in walked:
                for name in filenames + dirnames:
                    if not os.path.lexists(os.path.join(dirpath, name)):
                        continue
                    path = os.path.join(dirpath, name)
                    info = os.lstat(path)
                    arcname = path.lstrip("/")
                    if stat.S_ISLNK(info.st_mode):
                        member = zipfile.ZipInfo(arcname)
                        member.external_attr = (stat.S_IFLNK | 0o777) << 16
                        archive.writestr(member, os.readlink(path))
                    elif stat.S_ISREG(info.st_mode) and UNPACKED.get(path) != (
                        info.st_size,
                        info.st_mtime_ns,
                    ):
                        archive.write(path, arcname)  # new or changed in the container
    return buffer.getvalue()


def main() -> None:
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    user = header.get("user")
    unpack(read_exactly(stdin, header["payload"]), user)
    if user:
        own_parents(header["writeback"], user)
    fifo = header.get("fifo")
    reader: threading.Thread | None = None
    keep = stop_w = -1
    if fifo:
        os.makedirs(os.path.dirname(fifo), exist_ok=True)
        os.mkfifo(fifo, 0o600)
        if user:
            os.chown(fifo, user[0], user[1])
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        keep = os.open(fifo, os.O_WRONLY)  # no EOF between the plugin's writes
        stop_r, stop_w = os.pipe()
        reader = threading.Thread(target=relay_fifo, args=(fd, stop_r), daemon=True)
        reader.start()
    extra: dict[str, Any] = {}
    if user:
        extra = {"user": user[0], "group": user[1], "extra_groups": []}
    try:
        proc = subprocess.Popen(
            header["command"],
            cwd=header["cwd"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            **extra,
        )
    except OSError as exc:
        sys.stderr.write(f"containerrunner bootstrap: cannot run {header['command'][0]}: {exc}\n")
        rc = 127
    else:
        assert proc.stdout is not None
        out_fd = proc.stdout.fileno()
        for chunk in iter(lambda: os.read(out_fd, 1 << 16), b""):
            send({"o": base64.b64encode(chunk).decode()})
        rc = proc.wait()
    if reader is not None:
        os.close(keep)
        os.write(stop_w, b"x")
        reader.join()
        os.unlink(fifo)
    archive = pack(header["writeback"])
    send({"z": len(archive)}, archive)
    send({"rc": rc})


if __name__ == "__main__":
    main()
