"""Whether a container can have its engine's default network, checked before it starts.

Rootless podman gives a container its default network through slirp4netns (podman 4) or
pasta (podman 5), which open `/dev/net/tun` as the caller. Where the caller cannot open it
(on the test machine the node is `crw------- root`), every `podman run` without `--network`
fails with slirp4netns's raw error. A job that chose its network (`container_network`, or a
`--network` in `container_options`) is not checked: `none` and `host` need no tun device.
"""

from __future__ import annotations

import os

from containerrunner.config.execution import network_options
from containerrunner.errors import EngineError
from containerrunner.isolation.engine import Engine

TUN_DEVICE = "/dev/net/tun"


def tun_problem(device: str = TUN_DEVICE) -> str | None:
    """Why this process cannot open `device` read-write (None: it can)."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    return None


def check_default_network(
    engine: Engine, network: str | None, options: tuple[str, ...], device: str = TUN_DEVICE
) -> None:
    """Raise EngineError, saying what is missing and what works instead, when the job would
    run on rootless podman's default network and that network cannot be made here."""
    if engine.name != "podman" or not engine.rootless or network is not None:
        return
    if network_options(options):
        return
    problem = tun_problem(device)
    if problem is None:
        return
    raise EngineError(
        f"rootless podman cannot give this container its default network: its network "
        f"helper (slirp4netns or pasta) needs {device}, which uid {os.getuid()} cannot open "
        f"({problem}). A job that needs no network (plays on localhost, local commands, the "
        f"get_* helpers) runs with container_network='none' (CLI: --container-network none); "
        f"one that reaches other hosts (ssh, network devices, APIs) with "
        f"container_network='host' (the host's network), or on the default network once "
        f"{device} is usable by the user (as root: chmod 0666 {device}, its usual mode). "
        f"See docs/nonroot.md"
    )
