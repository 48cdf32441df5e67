"""A small SSH server for the tests (paramiko, test extra): public-key login, exec requests.

`SshServer(client_key)` listens on 127.0.0.1 (a free port), in threads of the test process,
and runs each exec request as `sh -c COMMAND` as the user running the tests, with stdin,
stdout and stderr on the channel and the exit status sent back. That is all Ansible's `ssh`
connection needs with pipelining (modules go to the remote python on stdin: no sftp, no scp).
Only `client_key` (the text of a private key; its public half is taken) logs in, so a job
that connects proves that key reached its ssh client, e.g. through the job's ssh-agent.
The host has no sshd: this keeps the ssh tests free of one.

A `forward_socket` lets in `direct-streamlocal` channels (a unix socket forward: podman's
`ssh://` reaches its service so) and splices each to that socket, whatever path the client named.

`python -m tests.sshserver ADDRESS PORT CLIENT_KEY_FILE [SOCKET]` serves on ADDRESS:PORT in a
process of its own (e.g. started in a network namespace with `nsenter --net=...`; the commands
run with its environment), prints `ready KEYTYPE BASE64` (its host key, for known_hosts) once it
listens, and stops on SIGTERM.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from types import TracebackType
from typing import IO

import paramiko

READ_SIZE = 65536


def _pump(src: IO[bytes], send: object) -> None:
    """Copy `src` to the channel through `send` (sendall or sendall_stderr) until EOF."""
    with contextlib.suppress(OSError, EOFError):
        while data := os.read(src.fileno(), READ_SIZE):
            send(data)  # type: ignore[operator]


def _feed(channel: paramiko.Channel, proc: subprocess.Popen[bytes]) -> None:
    """Copy the channel's data to the command's stdin until the client's EOF."""
    assert proc.stdin is not None
    with contextlib.suppress(OSError, EOFError):
        while data := channel.recv(READ_SIZE):
            proc.stdin.write(data)
            proc.stdin.flush()
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _serve_exec(channel: paramiko.Channel, command: str) -> None:
    proc = subprocess.Popen(
        ["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(target=_feed, args=(channel, proc), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, channel.sendall_stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    _pump(proc.stdout, channel.sendall)
    rc = proc.wait()
    threads[1].join()
    with contextlib.suppress(OSError, EOFError):
        channel.send_exit_status(rc)
        channel.shutdown_write()
        channel.close()


STREAMLOCAL = "direct-streamlocal@openssh.com"  # a unix socket forward (podman's ssh://)


def _splice(channel: paramiko.Channel, path: str) -> None:
    """Relay `channel` to a connection of the unix socket `path` both ways, until either ends."""
    with socket.socket(socket.AF_UNIX) as conn:
        try:
            conn.connect(path)
        except OSError:
            channel.close()
            return

        def back() -> None:
            with contextlib.suppress(OSError, EOFError):
                while data := conn.recv(READ_SIZE):
                    channel.sendall(data)
            with contextlib.suppress(OSError, EOFError):
                channel.shutdown_write()

        thread = threading.Thread(target=back, daemon=True)
        thread.start()
        with contextlib.suppress(OSError, EOFError):
            while data := channel.recv(READ_SIZE):
                conn.sendall(data)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        thread.join()
        channel.close()


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: SshServer) -> None:
        self.server = server
        self.forwards: set[int] = set()  # the chanids of STREAMLOCAL channels opened

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if key.asbytes() == self.server.client_key.asbytes():
            self.server.logins.append(username)
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        if kind == STREAMLOCAL and self.server.forward_socket:
            # paramiko hands over no socket path for this kind: it goes to forward_socket
            self.forwards.add(chanid)
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED_OPEN_FAILED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        threading.Thread(target=_serve_exec, args=(channel, command.decode()), daemon=True).start()
        return True


class SshServer:
    """See the module docstring; a context manager (stops listening and closes sessions)."""

    def __init__(
        self,
        client_key: str,
        address: str = "127.0.0.1",
        port: int = 0,
        forward_socket: str | None = None,
    ) -> None:
        self.forward_socket = forward_socket
        self.client_key = paramiko.Ed25519Key(file_obj=io.StringIO(client_key))
        self.host_key = paramiko.ECDSAKey.generate()
        self.logins: list[str] = []
        self._listener = socket.create_server((address, port))
        self.port: int = self._listener.getsockname()[1]
        self._transports: list[paramiko.Transport] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            interface = _Interface(self)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                transport.start_server(server=interface)
            if self.forward_socket:
                threading.Thread(
                    target=self._forwards, args=(transport, interface), daemon=True
                ).start()

    def _forwards(self, transport: paramiko.Transport, interface: _Interface) -> None:
        """Splice each STREAMLOCAL channel of `transport` to forward_socket."""
        while transport.is_active():
            channel = transport.accept(1)
            if channel is not None and channel.chanid in interface.forwards:
                assert self.forward_socket is not None
                threading.Thread(
                    target=_splice, args=(channel, self.forward_socket), daemon=True
                ).start()

    def __enter__(self) -> SshServer:
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(10)
        for transport in self._transports:
            transport.close()


def main(argv: list[str]) -> None:
    address, port, key_file, *forward = argv
    with (
        open(key_file) as fh,
        SshServer(fh.read(), address, int(port), *forward) as server,
    ):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        key = server.host_key
        print(f"ready {key.get_name()} {key.get_base64()}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
