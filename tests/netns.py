"""A network namespace with a veth pair to the host, for tests that put devices behind it.

`with NetworkNamespace("cr-net16-123", "10.231.17") as ns:` makes `ip netns add NAME` (its
path `/run/netns/NAME`, which podman joins with `--network=ns:PATH`), a veth pair whose host
end has PREFIX.1/24 and whose namespace end has PREFIX.2/24 (the host reaches the namespace
through that route, and so does a container on the host's network), and brings up both ends
and the namespace's loopback. Leaving the block deletes the namespace, which removes the veth
pair with it. `ip` must be there and the caller root (`available()` says whether it is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass


def enter_args(name: str) -> list[str]:
    """The argv prefix that runs a daemon in the named namespace: nsenter, not `ip netns
    exec`, which mounts a sysfs of its own (no cgroups there: dockerd needs them)."""
    return ["nsenter", f"--net=/run/netns/{name}"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def available() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    if os.geteuid() != 0:
        return "making a network namespace needs root"
    proc = _ip("netns", "list", check=False)
    if proc.returncode != 0:
        return f"`ip netns list` failed: {proc.stderr.strip()}"
    return None


@dataclass
class NetworkNamespace:
    name: str
    prefix: str  # the /24's first three octets, e.g. "10.231.17"

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    @property
    def host_address(self) -> str:
        return f"{self.prefix}.1"

    @property
    def address(self) -> str:
        """The namespace end's address, where its servers listen."""
        return f"{self.prefix}.2"

    @property
    def host_link(self) -> str:
        return f"crv{zlib.crc32(self.name.encode()):08x}h"  # names: 15 characters at most

    @property
    def inner_link(self) -> str:
        return f"crv{zlib.crc32(self.name.encode()):08x}n"

    def exec_args(self, *argv: str) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def create(self) -> None:
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.inner_link)
            _ip("link", "set", self.inner_link, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/24", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            inside = ("netns", "exec", self.name, "ip")
            _ip(*inside, "addr", "add", f"{self.address}/24", "dev", self.inner_link)
            _ip(*inside, "link", "set", self.inner_link, "up")
            _ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def delete(self) -> None:
        """Remove the namespace (and with it the veth pair); the host end too if it was left."""
        _ip("netns", "delete", self.name, check=False)
        if self.host_link_exists():
            _ip("link", "delete", self.host_link, check=False)

    def exists(self) -> bool:
        listed = _ip("netns", "list", check=False).stdout.split()
        return self.name in listed or os.path.exists(self.path)

    def host_link_exists(self) -> bool:
        return _ip("link", "show", "dev", self.host_link, check=False).returncode == 0

    def __enter__(self) -> NetworkNamespace:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()
