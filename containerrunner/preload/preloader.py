"""The warm session's preloader: runs inside the session's container, standard library only.

    python3 preloader.py SOCKET

It imports, once, what the ansible CLIs (ansible-doc, ansible-inventory, ansible-config)
import that does not depend on ansible's configuration — the standard library, third-party
packages and `ansible.module_utils` — and parses ansible's builtin collection routing once
(`cache_builtin_routing`), then serves requests on the unix socket SOCKET (in the
session's runtime dir, which the host bind-mounts). Per request it forks a child that takes
the request's argv, environment, cwd and the caller's stdin/stdout/stderr fds (passed over the
socket), runs the CLI's entry script as `python3 SCRIPT ARGS...` would, and reports its exit
status. `ansible.constants` and everything that reads ansible's configuration is never
imported here: a child imports it under the request's own environment and cwd, as a fresh
process would, so no configuration leaks from one call to the next.

Protocol (one request per connection; JSON lines):
    client -> {"argv": [...], "env": {...}, "cwd": "...", "pidfile": "..."} + fds (in, out, err)
    server -> {"pid": N}            the child runs (its pid inside the container)
              {"refused": "why"}    not started: the caller runs the command with `exec`
    client -> {"signal": N}         optional, any number: signal the child's process group
    server -> {"rc": N}             the child ended (negative: killed by that signal)
A client that closes the connection before the end kills the child's process group.
Its stderr (the session's runtime dir's preloader.log) says when it is ready and, per call,
the command's name, the child's pid, rc and CPU time: never arguments or environment.
"""

from __future__ import annotations

import array
import contextlib
import errno
import gc
import importlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import cast

#: the commands run in a forked child; anything else is refused (the caller execs it)
COMMANDS = ("ansible-doc", "ansible-inventory", "ansible-config")
CLI_MODULES = ("ansible.cli.doc", "ansible.cli.inventory", "ansible.cli.config")
#: the modules that read ansible's configuration when imported: never imported here
CONFIG_MODULE = "ansible.constants"
#: ansible's own collection routing, in the ansible package's config/ (cache_builtin_routing)
BUILTIN_ROUTING = "ansible_builtin_runtime.yml"
MAX_REQUEST = 4 << 20
_STDIO = ((0, "rb"), (1, "wb"), (2, "wb"))


class _Blocked(ImportError):
    pass


class _BlockConfig:
    """A meta path finder that refuses `ansible.constants` while the preloader imports."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == CONFIG_MODULE:
            raise _Blocked(name)
        return None


def _probe_modules() -> list[str]:
    """The modules a fresh process imports for the CLIs, in import order (a throwaway child)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            for name in CLI_MODULES:
                __import__(name)
            os.write(write_fd, json.dumps(list(sys.modules)).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    try:
        names = json.loads(b"".join(chunks) or b"[]")
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)]


def _independent(name: str) -> bool:
    if name in ("__main__", "__mp_main__") or name.startswith("_frozen"):
        return False
    if name == "ansible" or name.startswith("ansible.module_utils"):
        return True
    return not name.startswith("ansible.")


def preload() -> int:
    """Import what the CLIs need that does not depend on ansible's configuration."""
    names = _probe_modules()  # before the blocker: the probe imports everything
    blocker = _BlockConfig()
    sys.meta_path.insert(0, blocker)
    count = 0
    try:
        for name in names:
            if not _independent(name) or name in sys.modules:
                continue
            try:
                __import__(name)
                count += 1
            except (Exception, SystemExit):  # needs the config (a CLI exits on it): stays out
                continue
    finally:
        sys.meta_path.remove(blocker)
    for name in list(sys.modules):  # never half-imported config-dependent modules
        if name == CONFIG_MODULE or (name.startswith("ansible.") and not _independent(name)):
            del sys.modules[name]
    return count


def cache_builtin_routing() -> bool:
    """Parse ansible's own collection routing once, here, for the children to use.

    ansible-doc and ansible-inventory parse `ansible/config/ansible_builtin_runtime.yml`
    (~10,000 lines of YAML, ~35 ms of CPU) in every process, through the collection loader's
    `_meta_yml_to_dict(data, content_id)`, a hook ansible documents as replaceable by tools,
    with a cache in mind. It is replaced by one that gives a child the dict parsed here when
    the bytes are that file's, once (what a fresh process parses once; the child's copy is its
    own, the fork's): any other data, or the same bytes again, are parsed as before. Neither
    the loader nor the parse reads ansible's configuration. False when the hook is not
    there as expected (another ansible-core): nothing is replaced.
    """
    before = set(sys.modules)
    blocker = _BlockConfig()
    sys.meta_path.insert(0, blocker)
    try:
        package = importlib.import_module("ansible")
        finder = importlib.import_module("ansible.utils.collection_loader._collection_finder")
        meta = importlib.import_module("ansible.utils.collection_loader._collection_meta")
    except (Exception, SystemExit):  # nothing half-imported stays
        for name in set(sys.modules) - before:
            if name.startswith("ansible.") and not _independent(name):
                del sys.modules[name]
        return False
    finally:
        sys.meta_path.remove(blocker)
    found = vars(meta).get("_meta_yml_to_dict")
    if not callable(found) or vars(finder).get("_meta_yml_to_dict") is not found:
        return False
    original = cast(Callable[[bytes | str, object], object], found)
    path = os.path.join(os.path.dirname(str(package.__file__)), "config", BUILTIN_ROUTING)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        parsed = original(raw, ("ansible.builtin", "runtime.yml"))
    except Exception:
        return False
    cached = [(raw, parsed)]

    def meta_yml_to_dict(yaml_string_data: bytes | str, content_id: object) -> object:
        if cached and isinstance(yaml_string_data, bytes) and yaml_string_data == cached[0][0]:
            return cached.pop()[1]
        return original(yaml_string_data, content_id)

    finder._meta_yml_to_dict = meta_yml_to_dict  # type: ignore[attr-defined]
    meta._meta_yml_to_dict = meta_yml_to_dict  # type: ignore[attr-defined]
    return True


def _script(command: str, path: str) -> str | None:
    """The entry script of `command` when it runs with this interpreter, else None."""
    found = shutil.which(command, path=path)
    if found is None:
        return None
    try:
        with open(found, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    interpreter = first[2:].strip().split(b" ")[0].decode(errors="replace")
    # the same binary in the same bin dir: a venv's python3 and the system's it links to are
    # one binary with different sys.path
    same_dir = os.path.realpath(os.path.dirname(interpreter)) == os.path.realpath(
        os.path.dirname(sys.executable)
    )
    if not same_dir or os.path.realpath(interpreter) != os.path.realpath(sys.executable):
        return None
    return found


def _fresh_stdio() -> None:
    """sys.stdin/stdout/stderr on the new fds 0-2, made as Python makes them at start-up for
    a process whose streams are pipes (the old ones wrapped the preloader's own files)."""
    encoding = sys.stdout.encoding
    errors = sys.stdout.errors
    stdin, stdout, stderr = (io.FileIO(fd, mode, closefd=False) for fd, mode in _STDIO)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(stdin), encoding=encoding, errors=errors)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(stdout), encoding=encoding, errors=errors)
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(stderr),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr  # type: ignore[misc]


def _close_other_fds() -> None:
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = list(range(3, 1024))
    for fd in open_fds:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.close(fd)


def _child(
    request: dict[str, object], fds: list[int], script: str, base_env: dict[str, str]
) -> None:
    """In the forked child: become the request's process, run the script, exit (never returns)."""
    rc = 1
    try:
        signal.set_wakeup_fd(-1)  # the preloader's wake-up pipe: closed below
        os.setsid()
        for number, fd in enumerate(fds[:3]):
            os.dup2(fd, number)
        _close_other_fds()  # what the preloader holds (its socket, other calls') stays out
        _fresh_stdio()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        pidfile = request.get("pidfile")
        if isinstance(pidfile, str) and pidfile:
            with open(pidfile, "w") as f:
                f.write(f"{os.getpid()}\n")
        env = dict(base_env)
        env.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
        os.environ.clear()
        os.environ.update(env)
        os.chdir(str(request["cwd"]))
        argv = [str(a) for a in request["argv"]]  # type: ignore[attr-defined]
        sys.argv = [script, *argv[1:]]
        sys.path[0] = os.path.dirname(script)
        import runpy

        try:
            runpy.run_path(script, run_name="__main__")
            rc = 0
        except SystemExit as exc:
            code = exc.code
            if code is None:
                rc = 0
            elif isinstance(code, int):
                rc = code & 0xFF
            else:
                print(code, file=sys.stderr)
                rc = 1
        except KeyboardInterrupt:
            rc = 128 + signal.SIGINT
        except BaseException:
            import traceback

            traceback.print_exc()
            rc = 1
        import atexit

        with contextlib.suppress(BaseException):  # as the interpreter's exit: errors ignored
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # a closed pipe: nothing more to say
                stream.flush()
    except BaseException:
        import traceback

        with contextlib.suppress(OSError):
            os.write(2, f"preloader: {traceback.format_exc()}".encode(errors="replace"))
    finally:
        os._exit(rc)


def _send(conn: socket.socket, message: dict[str, object]) -> None:
    with contextlib.suppress(OSError):  # the caller went away
        conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket) -> tuple[dict[str, object] | None, list[int]]:
    """One request line and the fds that came with it."""
    data = b""
    fds: list[int] = []
    conn.settimeout(10.0)
    while b"\n" not in data and len(data) < MAX_REQUEST:
        msg, ancdata, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                fds.extend(got)
        if not msg:
            break
        data += msg
    conn.settimeout(None)
    try:
        request = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None, fds
    return (request if isinstance(request, dict) else None), fds


class Server:
    def __init__(self, path: str) -> None:
        self.base_env = dict(os.environ)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # pid -> its client's connection
        self.commands: dict[int, str] = {}
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    self._accept()
                elif key.data == "child":
                    self._reap()
                else:
                    self._from_client(key.fileobj, key.data)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            request, fds = _receive(conn)
        except OSError:
            conn.close()
            return
        try:
            self._start(conn, request, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _start(
        self, conn: socket.socket, request: dict[str, object] | None, fds: list[int]
    ) -> None:
        if request is None or len(fds) != 3:
            _send(conn, {"refused": "malformed request"})
            conn.close()
            return
        argv = request.get("argv")
        env = request.get("env")
        if not isinstance(argv, list) or not argv or not isinstance(env, dict):
            _send(conn, {"refused": "malformed request"})
            conn.close()
            return
        command = str(argv[0])
        path = str(env.get("PATH", self.base_env.get("PATH", os.defpath)))
        script = _script(command, path) if command in COMMANDS else None
        if script is None:
            _send(conn, {"refused": f"{command} is not preloaded"})
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.listener.close()
            conn.close()
            _child(request, fds, script, self.base_env)
        self.children[pid] = conn
        self.commands[pid] = command  # its name only, for the log: never its arguments
        _send(conn, {"pid": pid})
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def _from_client(self, conn: socket.socket, pid: int) -> None:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the caller went away: so does its child
            self._signal(pid, signal.SIGKILL)
            self.selector.unregister(conn)
            return
        for line in data.splitlines():
            try:
                number = int(json.loads(line).get("signal", 0))
            except (ValueError, AttributeError, TypeError):
                continue
            if number in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGHUP):
                self._signal(pid, number)

    def _signal(self, pid: int, number: int) -> None:
        if pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, number)

    def _reap(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            rc = os.waitstatus_to_exitcode(status)
            command = self.commands.pop(pid, "?")
            cpu = usage.ru_utime + usage.ru_stime
            print(
                f"preloader: served {command} (pid {pid}, rc {rc}, cpu {cpu:.3f} s)",
                file=sys.stderr,
                flush=True,
            )
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            _send(conn, {"rc": rc})
            conn.close()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: preloader.py SOCKET", file=sys.stderr)
        return 2
    path = sys.argv[1]
    started = time.monotonic()
    try:
        server = Server(path)
    except OSError as exc:
        print(f"preloader: cannot listen on {path}: {exc}", file=sys.stderr)
        return 1
    # requests queue on the socket until the imports are done
    count = preload()
    routing = cache_builtin_routing()
    gc.collect()
    gc.freeze()  # the children's collections never touch (and copy) the preloaded objects
    took = time.monotonic() - started
    cached = ", builtin routing parsed" if routing else ""
    print(f"preloader: ready, {count} modules{cached} in {took:.2f} s", file=sys.stderr, flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno != errno.EINTR:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
