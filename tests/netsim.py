"""Simulated network devices for the network tests and examples/network (fakenos, test extra).

`SimulatedDevices` starts fakenos SSH servers on 127.0.0.1 (free ports) for Cisco IOS, Arista
EOS and Juniper Junos devices, plus four misbehaving IOS devices: `refuser` (its password is
not the one the inventory gives: it refuses every login), `hanger` (stops answering in the middle
of `show tech-support`, until the devices are stopped), `mute` (no fakenos: a TCP listener
that accepts and never sends the SSH banner, so the login never completes) and `down` (nothing
listens on its port: the connection is refused, as for a device that is switched off). The
Ansible inventory for them comes from `inventory()`.

fakenos answers a fixed command set per platform. Where that set differs from what the Ansible
collections send (terminal setup, `show version` in user mode, `show privilege`, `enable` with a
secret, the running config for ios_config), the commands below give the answers the real
platforms give. containerrunner itself knows nothing of the simulator.

`python -m tests.netsim [--address ADDR] ios1:PORT eos1:PORT junos1:PORT` serves those devices
(on 127.0.0.1 or ADDR) until stdin closes or SIGTERM/SIGINT comes (examples/network/run uses it,
and tests/integration/test_network_netns.py inside a network namespace, through
`ServedDevices`).
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USERNAME = "netops"
PASSWORD = "Fake-Device-Pw-7c1e"  # the devices' login password (given through the vault)
ENABLE_SECRET = "Fake-Enable-Secret-93ad"  # IOS/EOS enable secret

USER, ENABLE = "{base_prompt}>", "{base_prompt}#"
BOTH = [USER, ENABLE]
SECRET_PROMPT = "Password: "
HANG_TIMEOUT = 5  # hanger's ansible_command_timeout (seconds)
# mute's ansible_command_timeout (seconds). Its ansible_connect_timeout stays the default (30):
# that is how long the persistent connection waits idle for its first request, and under load
# a module can start later than 3 s after it (the socket is gone by then: "socket path ...
# does not exist", a task failure)
MUTE_TIMEOUT = 3
LOOPBACK = "127.0.0.1"

NETWORK_OS = {
    "cisco_ios": "cisco.ios.ios",
    "arista_eos": "arista.eos.eos",
    "juniper_junos": "junipernetworks.junos.junos",
}

IOS_VERSION = """\
Cisco IOS Software, IOSv Software (VIOS-ADVENTERPRISEK9-M), Version 15.9(3)M4, RELEASE SOFTWARE
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2021 by Cisco Systems, Inc.

ROM: Bootstrap program is IOSv

{base_prompt} uptime is 2 days, 3 hours, 4 minutes
System returned to ROM by reload
System image file is "flash0:/vios-adventerprisek9-m"

cisco IOSv (revision 1.0) with 460137K/62464K bytes of memory.
Processor board ID 9ZX1KP3V7LRTYU2D0N4QW
4 Gigabit Ethernet interfaces
Configuration register is 0x0"""

IOS_RUNNING = """\
Building configuration...

Current configuration : 212 bytes
!
version 15.9
hostname {base_prompt}
!
interface GigabitEthernet0/0
 description uplink
 ip address 192.0.2.1 255.255.255.0
!
ntp server 192.0.2.123
!
end"""

EOS_VERSION = """\
Arista vEOS-lab
Hardware version:
Serial number: SN-FAKE-1
System MAC address:  5254.0000.0001

Software image version: 4.30.1F
Architecture: x86_64"""

EOS_VERSION_JSON = (
    '{"modelName": "vEOS-lab", "version": "4.30.1F", "serialNumber": "SN-FAKE-1",'
    ' "systemMacAddress": "52:54:00:00:00:01", "architecture": "x86_64"}'
)

JUNOS_VERSION = """\
Hostname: {hostname}
Model: vsrx
Junos: 21.4R1.12
JUNOS Software Release [21.4R1.12]"""

JUNOS_INTERFACES_TERSE = """\
Interface               Admin Link Proto    Local                 Remote
ge-0/0/0                up    up
ge-0/0/0.0              up    up   inet     192.0.2.3/24
lo0                     up    up
lo0.0                   up    up   inet     10.255.0.3          --> 0/0"""


def _privilege(_device: Any, base_prompt: str, current_prompt: str, command: str) -> str:
    level = 15 if current_prompt.endswith("#") else 1
    return f"Current privilege level is {level}"


def _quiet(prompt: Any = BOTH) -> dict[str, Any]:
    return {"output": "", "prompt": prompt}


def _ios_like(enable_secret: str) -> dict[str, dict[str, Any]]:
    """What IOS and EOS answer to the collections' session setup and `enable`."""
    return {
        "terminal length 0": _quiet(),
        "terminal width 512": _quiet(),
        "terminal width 0": _quiet(),
        "show privilege": {"output": _privilege, "prompt": BOTH},
        "enable": {"output": "", "prompt": USER, "new_prompt": SECRET_PROMPT},
        # the secret is what the device reads at its Password: prompt
        enable_secret: {"output": "", "prompt": SECRET_PROMPT, "new_prompt": ENABLE},
        "disable": {"output": "", "prompt": ENABLE, "new_prompt": USER},
        "end": {"output": "", "prompt": ENABLE},
    }


def ios_commands(enable_secret: str = ENABLE_SECRET) -> dict[str, dict[str, Any]]:
    return {
        **_ios_like(enable_secret),
        "show version": {"output": IOS_VERSION, "prompt": BOTH},
        "show vlan": {"output": "% Invalid input detected at '^' marker.", "prompt": BOTH},
        "show running-config": {"output": IOS_RUNNING, "prompt": ENABLE},
    }


def eos_commands(enable_secret: str = ENABLE_SECRET) -> dict[str, dict[str, Any]]:
    return {
        **_ios_like(enable_secret),
        "show version": {"output": EOS_VERSION, "prompt": BOTH},
        "show version | json": {"output": EOS_VERSION_JSON, "prompt": BOTH},
        "show hostname | json": {
            "output": lambda _d, base_prompt, **_kw: (
                f'{{"hostname": "{base_prompt}", "fqdn": "{base_prompt}.lab"}}'
            ),
            "prompt": BOTH,
        },
        "bash timeout 5 cat /mnt/flash/boot-config": {
            "output": "% Invalid input (privileged mode required)",
            "prompt": USER,
        },
    }


def junos_commands() -> dict[str, dict[str, Any]]:
    return {
        "set cli timestamp disable": _quiet(),
        "set cli screen-length 0": _quiet(),
        "set cli screen-width 1024": {"output": "Screen width set to 1024", "prompt": BOTH},
        "show version": {
            "output": lambda _d, base_prompt, **_kw: JUNOS_VERSION.format(
                hostname=base_prompt.rpartition("@")[2]  # the prompt is user@host
            ),
            "prompt": BOTH,
        },
        "show interfaces terse": {"output": JUNOS_INTERFACES_TERSE, "prompt": BOTH},
    }


@dataclass(frozen=True)
class Device:
    """One simulated device: its inventory name, fakenos platform, address and port."""

    name: str
    platform: str
    port: int
    password: str = PASSWORD  # what the device accepts
    address: str = LOOPBACK
    mute: bool = False  # a listener that never speaks SSH instead of a fakenos device
    down: bool = False  # nothing listens on its port

    @property
    def network_os(self) -> str:
        return NETWORK_OS[self.platform]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class MuteListener:
    """Accepts TCP connections on (address, port) and never sends a byte: an SSH login to it
    waits for the banner until the client's timeout."""

    address: str
    port: int
    _sock: socket.socket | None = None
    _held: list[socket.socket] = field(default_factory=list)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.address, self.port))
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                self._held.append(sock.accept()[0])
            except OSError:  # closed by stop()
                return

    def stop(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        while self._held:
            self._held.pop().close()


@dataclass
class SimulatedDevices:
    """The simulated devices; `with SimulatedDevices() as devices:` starts and stops them."""

    devices: dict[str, Device] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)  # ends `hanger`'s hang
    hung: threading.Event = field(default_factory=threading.Event)  # `hanger` got its command
    _net: Any = None
    _mute: list[MuteListener] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.devices:
            for name, platform in (
                ("ios1", "cisco_ios"),
                ("eos1", "arista_eos"),
                ("junos1", "juniper_junos"),
                ("hanger", "cisco_ios"),
            ):
                self.devices[name] = Device(name, platform, free_port())
            self.devices["refuser"] = Device(
                "refuser", "cisco_ios", free_port(), password="not-the-inventory-password"
            )
            self.devices["mute"] = Device("mute", "cisco_ios", free_port(), mute=True)
            self.devices["down"] = Device("down", "cisco_ios", free_port(), down=True)

    def _commands(self, device: Device) -> Mapping[str, Any]:
        if device.platform == "arista_eos":
            return eos_commands()
        if device.platform == "juniper_junos":
            return junos_commands()
        commands = ios_commands()
        if device.name == "hanger":
            hung, release = self.hung, self.release

            def hang(_device: Any, **_kw: Any) -> str:  # a function: fakenos deep-copies
                hung.set()
                release.wait()
                return ""

            commands["show tech-support"] = {"output": hang, "prompt": BOTH}
        return commands

    def fakenos_inventory(self) -> dict[str, Any]:
        hosts: dict[str, Any] = {}
        for device in self.devices.values():
            if device.mute or device.down:
                continue
            prompt = f"{USERNAME}@{device.name}" if device.platform == "juniper_junos" else None
            hosts[device.name] = {
                "username": USERNAME,
                "password": device.password,
                "port": device.port,
                "platform": device.platform,
                "server": {
                    "plugin": "ParamikoSshServer",
                    "configuration": {"address": device.address, "ssh_banner": device.name},
                },
                "shell": {
                    "plugin": "CMDShell",
                    "configuration": {"intro": "", **({"base_prompt": prompt} if prompt else {})},
                },
                "nos": {
                    "plugin": device.platform,
                    "configuration": {"commands": self._commands(device)},
                },
            }
        return {"hosts": hosts}

    def start(self) -> None:
        from fakenos import FakeNOS  # the test extra: imported only where devices are wanted

        logging.getLogger("fakenos").setLevel(logging.CRITICAL)
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        try:
            for device in self.devices.values():
                if device.mute:
                    self._mute.append(MuteListener(device.address, device.port))
                    self._mute[-1].start()
            self._net = FakeNOS(inventory=self.fakenos_inventory())
            self._net.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.release.set()
        while self._mute:
            self._mute.pop().stop()
        if self._net is not None:
            net, self._net = self._net, None
            net.stop()

    def __enter__(self) -> SimulatedDevices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answering(self) -> list[str]:
        """The devices whose port still accepts a TCP connection (none, once stopped: call it
        only then, as a connection without SSH makes fakenos log an error)."""
        up = []
        for device in self.devices.values():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex((device.address, device.port)) == 0:
                    up.append(device.name)
        return up

    def inventory(self, names: Iterator[str] | list[str] | None = None) -> str:
        """An Ansible INI inventory of the devices (all, or `names`), grouped by platform, with
        the connection settings; no secrets (give `ansible_password` and
        `ansible_become_password` through vault, `passwords` or extravars)."""
        chosen = list(names) if names is not None else list(self.devices)
        groups: dict[str, list[str]] = {}
        for name in chosen:
            device = self.devices[name]
            timeouts = {"hanger": f" ansible_command_timeout={HANG_TIMEOUT}"}.get(name, "")
            if device.mute:  # libssh's connect gives up after the command timeout
                timeouts = f" ansible_command_timeout={MUTE_TIMEOUT}"
            groups.setdefault(device.platform, []).append(
                f"{name} ansible_host={device.address} ansible_port={device.port}{timeouts}"
            )
        lines = [
            "[all:vars]",
            "ansible_connection=ansible.netcommon.network_cli",
            f"ansible_user={USERNAME}",
            "ansible_host_key_checking=false",
        ]
        for platform, hosts in groups.items():
            lines += ["", f"[{platform}]", *hosts, "", f"[{platform}:vars]",
                      f"ansible_network_os={NETWORK_OS[platform]}"]  # fmt: skip
        return "\n".join(lines) + "\n"


PLATFORMS = {"ios1": "cisco_ios", "eos1": "arista_eos", "junos1": "juniper_junos"}
LISTENING = "simulated devices listening"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class ServedDevices:
    """`python -m tests.netsim` in a child process, started under `wrapper` (e.g. `ip netns
    exec NAME`): `with ServedDevices(devices, wrapper) as served:` returns once the child says
    its devices listen (or raises with its output), and stops it when the block ends.
    `devices` (platform devices of PLATFORMS, one address) gives the inventory."""

    devices: SimulatedDevices
    wrapper: list[str] = field(default_factory=list)
    startup_limit: float = 60.0
    _proc: subprocess.Popen[str] | None = None

    def argv(self) -> list[str]:
        chosen = list(self.devices.devices.values())
        addresses = {device.address for device in chosen}
        if len(addresses) != 1 or any(device.name not in PLATFORMS for device in chosen):
            raise ValueError(f"ServedDevices serves {', '.join(PLATFORMS)} on one address")
        ports = [f"{device.name}:{device.port}" for device in chosen]
        return [*self.wrapper, sys.executable, "-m", "tests.netsim", "--address",
                addresses.pop(), *ports]  # fmt: skip

    def start(self) -> None:
        proc = subprocess.Popen(
            self.argv(), cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._proc = proc
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + self.startup_limit
        while not any(line.startswith(LISTENING) for line in seen):
            left = deadline - time.monotonic()
            ready = select.select([proc.stdout], [], [], max(left, 0))[0]
            line = proc.stdout.readline() if ready else ""
            if not line:  # the child ended, or stayed silent past the limit
                self.stop()
                raise RuntimeError(f"simulated devices did not start: {''.join(seen)!r}")
            seen.append(line)

    def stop(self) -> int | None:
        """Stop the child (closing its stdin ends it; SIGKILL if it lingers); its exit code."""
        if self._proc is None:
            return None
        proc, self._proc = self._proc, None
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        proc.stdout.close()
        return rc

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> ServedDevices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    """`python -m tests.netsim [--address ADDR] NAME:PORT ...`: serve those devices (ios1,
    eos1, junos1) on 127.0.0.1 (or ADDR) until stdin closes or SIGTERM/SIGINT comes."""
    address = LOOPBACK
    if argv[:1] == ["--address"] and len(argv) > 1:
        address, argv = argv[1], argv[2:]
    try:
        chosen = {name: int(port) for name, _, port in (arg.partition(":") for arg in argv)}
        devices = {n: Device(n, PLATFORMS[n], port, address=address) for n, port in chosen.items()}
    except (KeyError, ValueError):
        devices = {}
    if not devices:
        print("usage: python -m tests.netsim [--address ADDR] NAME:PORT ..."
              f" (NAME: {', '.join(PLATFORMS)})", file=sys.stderr)  # fmt: skip
        return 2
    done = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    with SimulatedDevices(devices):
        listening = ", ".join(f"{d.name} ({d.platform}) on {d.address}:{d.port}"
                              for d in devices.values())  # fmt: skip
        print(f"{LISTENING}: {listening}", flush=True)
        done.wait()
    print("simulated devices stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
