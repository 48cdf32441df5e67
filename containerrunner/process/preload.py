"""The backend of a call served by a warm session's preloader (containerrunner/preload).

In place of `<engine> exec ... COMMAND`, the call connects to the preloader's unix socket in
the session's runtime dir, sends the command, its environment (the variables the exec path
would pass by name, with their values: over the socket, never on a command line or on disk)
and cwd, and passes the read end of /dev/null and the write ends of two pipes as the child's
stdin, stdout and stderr. The preloader forks a child with ansible's configuration-independent
modules already imported; its output comes back on the pipes as an exec'd process's would,
its exit status on the socket.

`start()` raises `PreloadUnavailable` when the preloader cannot take the call (no socket, no
answer in `ACK_TIMEOUT`, a refusal): nothing ran, and the caller runs the command with `exec`.
Once the child runs, signals go to its process group through the socket, and closing the
socket kills the group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from containerrunner.isolation.types import Invocation
from containerrunner.process.base import Backend, Stream
from containerrunner.process.controls import ProcessControls

if TYPE_CHECKING:
    import socket

log = logging.getLogger(__name__)

#: how long to wait for the preloader to take a call (it answers once its imports are done)
ACK_TIMEOUT = 10.0
#: how long `reap()` waits for the exit status after the child was killed
REAP_TIMEOUT = 10.0
#: a call made while the preloader starts (before its socket is bound, ~0.1 s after the
#: container) waits this long for it, looking every STARTING_POLL s
STARTING_WAIT = 5.0
STARTING_POLL = 0.01
#: the preloader's log, next to its socket: empty until it is ready or failed
PRELOAD_LOG = "preloader.log"
_MAX_LINE = 1 << 16


class PreloadUnavailable(Exception):
    """The preloader did not take the call; nothing ran."""


class PreloadBackend(Backend):
    """One call run by the preloader; pipes as `PipeBackend`, exit status from the socket."""

    signals_in_container = True
    _sock: socket.socket | None = None
    _child_pid = -1  # inside the container
    _status: int | None = None
    _buffer = b""
    _out_r: int | None = None
    _err_r: int | None = None

    def start(self) -> None:
        spec = self.inv.exec_spec
        if spec is None or spec.preload_socket is None:
            raise PreloadUnavailable("not a call in a session with a preloader")
        request = {
            "argv": list(spec.command),
            "env": {name: self.inv.env[name] for name in spec.env_names if name in self.inv.env},
            "cwd": spec.workdir,
            "pidfile": spec.pidfile,
        }
        import socket  # only a session's preloaded calls need it (~1 ms of a job's imports)

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = sock
        sock.settimeout(ACK_TIMEOUT)
        _connect(sock, spec.preload_socket)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._out_r, self._err_r = out_r, err_r
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            data = json.dumps(request).encode("utf-8") + b"\n"
            socket.send_fds(sock, [data], [null, out_w, err_w])
        except OSError as exc:
            raise PreloadUnavailable(f"cannot send the call to the preloader: {exc}") from exc
        finally:
            for fd in (null, out_w, err_w):
                os.close(fd)
        try:
            answer = self._message(time.monotonic() + ACK_TIMEOUT)
        except (OSError, ValueError) as exc:
            raise PreloadUnavailable(f"no answer from the preloader: {exc}") from exc
        if answer is None or "pid" not in answer:
            why = answer.get("refused", answer) if answer else "it closed the connection"
            raise PreloadUnavailable(f"the preloader refused the call: {why}")
        pid = answer["pid"]
        if not isinstance(pid, int):
            raise PreloadUnavailable(f"unexpected answer from the preloader: {answer!r}")
        self._child_pid = pid
        sock.settimeout(None)
        sock.setblocking(False)
        self._watch(
            [Stream.of(out_r, self.controls.stdout), Stream.of(err_r, self.controls.stderr)]
        )
        self.watch_fd(sock.fileno(), self._on_socket)
        if self._buffer:
            self._on_socket()

    def _message(self, deadline: float) -> dict[str, object] | None:
        """The next JSON line from the socket (blocking until `deadline`); None at EOF."""
        assert self._sock is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self._sock.settimeout(left)
            chunk = self._sock.recv(4096)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > _MAX_LINE:
                raise ValueError("answer too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError(f"unexpected answer {message!r}")
        return message

    def _on_socket(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(4096)
        except BlockingIOError:
            chunk = None
        except OSError:
            chunk = b""
        if chunk:
            self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                rc = json.loads(line).get("rc")
                if isinstance(rc, int):
                    self._exit_with(rc)
        if chunk == b"" and self._status is None:  # the preloader died with the child running
            log.warning("the session's preloader went away while pid %d ran", self._child_pid)
            self._exit_with(-signal.SIGKILL)

    def _exit_with(self, rc: int) -> None:
        # as `<engine> exec` reports it: a child killed by signal N exits 128 + N
        self._status = 128 - rc if rc < 0 else rc
        if self._sock is not None:
            self.unwatch_fd(self._sock.fileno())
        self._mark_exited()

    def _has_exited_nowait(self) -> bool:
        return self._status is not None

    def signal_group(self, sig: signal.Signals) -> None:
        if self._status is not None or self._sock is None or self._child_pid <= 0:
            return
        with contextlib.suppress(OSError):
            self._sock.setblocking(True)
            self._sock.sendall(json.dumps({"signal": int(sig)}).encode() + b"\n")
            self._sock.setblocking(False)

    def _reap(self) -> int:
        deadline = time.monotonic() + REAP_TIMEOUT
        while self._status is None:
            if self._sock is None or time.monotonic() >= deadline:
                self._status = 128 + signal.SIGKILL
                break
            try:
                message = self._message(deadline)
            except (OSError, ValueError):
                message = None
            if message is None:
                self._exit_with(-signal.SIGKILL)
            elif isinstance(message.get("rc"), int):
                self._exit_with(int(message["rc"]))  # type: ignore[call-overload]
        return self._status

    def _running(self) -> bool:
        return self._child_pid > 0 and self._status is None

    def _close_io(self) -> None:
        if self._sock is not None:
            self._sock.close()  # a child still running is killed by the preloader
            self._sock = None
        for fd in (self._out_r, self._err_r):
            if fd is not None:
                os.close(fd)
        self._out_r = self._err_r = None


def _connect(sock: socket.socket, path: str) -> None:
    """Connect to the preloader; while it starts (its log is there, still empty: it has not
    failed, and its socket comes next) wait for its socket, up to STARTING_WAIT."""
    log_path = os.path.join(os.path.dirname(path), PRELOAD_LOG)
    deadline = time.monotonic() + STARTING_WAIT
    while True:
        try:
            sock.connect(path)
            return
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            try:
                starting = os.path.getsize(log_path) == 0
            except OSError:
                starting = False
            if not starting or time.monotonic() >= deadline:
                raise PreloadUnavailable(f"cannot connect to {path}: {exc}") from exc
            time.sleep(STARTING_POLL)
        except OSError as exc:
            raise PreloadUnavailable(f"cannot connect to {path}: {exc}") from exc


def start_preloaded(inv: Invocation, controls: ProcessControls) -> Backend | None:
    """A started PreloadBackend for `inv`, or None (logged at debug) when the preloader did
    not take it: the caller runs `inv.argv` (`<engine> exec`) instead."""
    backend = PreloadBackend(inv, controls)
    try:
        backend.start()
    except PreloadUnavailable as exc:
        log.debug("running %s with exec: %s", inv.argv[0], exc)
        backend.close()
        return None
    except BaseException:
        backend.close()
        raise
    return backend
