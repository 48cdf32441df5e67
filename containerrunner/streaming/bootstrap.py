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
#
# Secrets, in the header only when the job has them, and never written to stdout:
# "ssh_key": TEXT is loaded from memory (`ssh-add -` on a pipe) into an ssh-agent started for
# the job, its socket in a private 0700 dir (SSH_AUTH_SOCK), when the image has ssh-agent and
# ssh-add; else it is written to a 0600 file in that dir (ANSIBLE_PRIVATE_KEY_FILE). The agent
# and the dir go when the command ends, before the write-back is packed.
# "passwords": {REGEX: ANSWER} runs the command on a pty of its own (its controlling terminal;
# stdout and stderr merged; no echo, no "\n" -> "\r\n") and answers each prompt a regex
# finds in the output since the last answer (at most PROMPT_WINDOW characters).
import base64
import contextlib
import errno
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import termios
import threading
import zipfile
from collections.abc import Callable
from typing import IO, Any

PROMPT_WINDOW = 4096
# run on the pty: make it the controlling terminal (getpass reads /dev/tty), then the command
ON_TTY = """\
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    sys.stderr.write(f"containerrunner bootstrap: cannot run {sys.argv[1]}: {exc}\\n")
    sys.exit(127)
"""

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


def secret_dir(user: list[int] | None) -> str:
    """A private dir for the job's key or agent socket: in memory (/dev/shm) where it can."""
    shm = "/dev/shm"
    where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    path = tempfile.mkdtemp(prefix="cr-secret-", dir=where)  # 0700
    if user:
        os.chown(path, user[0], user[1])
    return path


def as_user(user: list[int] | None) -> dict[str, Any]:
    return {"user": user[0], "group": user[1], "extra_groups": []} if user else {}


def load_key(key: str, user: list[int] | None) -> tuple[dict[str, str], Callable[[], None]]:
    """(the command's variables, cleanup) for the job's ssh key: an agent holding it, else a
    0600 key file; cleanup stops the agent and removes the dir."""
    path = secret_dir(user)
    text = key if key.endswith("\n") else key + "\n"
    agent_pid: list[int] = []

    def cleanup() -> None:
        for pid in agent_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        shutil.rmtree(path, ignore_errors=True)

    if shutil.which("ssh-agent") and shutil.which("ssh-add"):
        sock = os.path.join(path, "agent.sock")
        started = subprocess.run(
            ["ssh-agent", "-s", "-a", sock], capture_output=True, text=True, **as_user(user)
        )
        found = re.search(r"SSH_AGENT_PID=(\d+)", started.stdout)
        if started.returncode != 0 or found is None:
            cleanup()
            raise SystemExit(f"containerrunner bootstrap: ssh-agent failed: {started.stderr}")
        agent_pid.append(int(found.group(1)))
        env = {**os.environ, "SSH_AUTH_SOCK": sock}
        added = subprocess.run(
            ["ssh-add", "-q", "-"], input=text, capture_output=True, text=True, env=env,
            **as_user(user),
        )  # fmt: skip
        if added.returncode != 0:
            cleanup()
            detail = added.stderr.strip() or "ssh-add failed"
            raise SystemExit(f"containerrunner bootstrap: ssh_key could not be loaded: {detail}")
        return {"SSH_AUTH_SOCK": sock}, cleanup
    key_file = os.path.join(path, "ssh_key")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if user:
        os.chown(key_file, user[0], user[1])
    return {"ANSIBLE_PRIVATE_KEY_FILE": key_file}, cleanup


def run_piped(command: list[str], cwd: str, env: dict[str, str], user: list[int] | None) -> int:
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        **as_user(user),
    )  # fmt: skip
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    for chunk in iter(lambda: os.read(out_fd, 1 << 16), b""):
        send({"o": base64.b64encode(chunk).decode()})
    return proc.wait()


def run_answered(
    command: list[str],
    cwd: str,
    env: dict[str, str],
    user: list[int] | None,
    passwords: dict[str, str],
) -> int:
    """The command on a pty, each prompt answered (never echoed, never sent back)."""
    prompts = [(re.compile(pattern), answer) for pattern, answer in passwords.items()]
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", ON_TTY, *command], cwd=cwd, env=env, stdin=slave,
            stdout=slave, stderr=slave, start_new_session=True, **as_user(user),
        )  # fmt: skip
    finally:
        os.close(slave)
    window = ""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError as exc:  # EIO: every holder of the pty's other end has closed it
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if not chunk:
            break
        send({"o": base64.b64encode(chunk).decode()})
        window = (window + chunk.decode("utf-8", "replace"))[-PROMPT_WINDOW:]
        for regex, answer in prompts:
            if regex.search(window):
                os.write(master, (answer + "\n").encode())
                window = ""
                break
    os.close(master)
    return proc.wait()


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
    env = dict(os.environ)
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if header.get("ssh_key"):
        added, cleanup = load_key(header["ssh_key"], user)
        env.update(added)
    try:
        if header.get("passwords"):
            rc = run_answered(header["command"], header["cwd"], env, user, header["passwords"])
        else:
            rc = run_piped(header["command"], header["cwd"], env, user)
    except OSError as exc:
        sys.stderr.write(f"containerrunner bootstrap: cannot run {header['command'][0]}: {exc}\n")
        rc = 127
    finally:
        cleanup()
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
