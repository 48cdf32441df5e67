"""Values the isolation layer works with: mounts and the container spec.

These are plain frozen data; the functions that build engine command lines from them are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from containerrunner.isolation.engine import Engine


@dataclass(frozen=True, order=True)
class Mount:
    """A bind mount: host `source` at `target` in the container (same path by default).

    `secret` marks a key or password file: it is always mounted read-only, even where the same
    path or a parent directory is also mounted read-write (see `mounts.normalise_mounts`).
    """

    source: str
    target: str
    read_only: bool = False
    secret: bool = False

    @classmethod
    def same_path(cls, path: str, read_only: bool = False, secret: bool = False) -> Mount:
        return cls(source=path, target=path, read_only=read_only or secret, secret=secret)


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to turn a command into `<engine> run ...`, already validated."""

    engine: Engine
    image: str
    name: str
    workdir: str
    mounts: tuple[Mount, ...] = ()
    env_names: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    tty: bool = False
    interactive: bool = False
    user: tuple[int, int] | None = None
    options: tuple[str, ...] = ()
    pull: str | None = None
    network: str | None = None  # --network=...; None: the engine's default
    detach: bool = False  # `run -d`: a warm session's container, which outlives the client


@dataclass(frozen=True)
class ExecSpec:
    """A command exec'd in a running session container (`<engine> exec ...`), validated.

    `pidfile` (in the job's runtime dir, which the session mounts) receives the pid, inside
    the container, of the exec'd process, which leads its own session there: the job is
    stopped by signalling that group inside the container (`reaper.signal_exec`).
    """

    engine: Engine
    container: str
    workdir: str
    pidfile: str
    env_names: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = False
    command: tuple[str, ...] = ()  # what runs in the container (after the pidfile wrapper)
    # the session preloader's socket when it may run `command` (process/preload.py)
    preload_socket: str | None = None


@dataclass(frozen=True)
class Invocation:
    """What the process layer executes: on the host, or `<engine> run ...` for a container."""

    argv: tuple[str, ...]  # what to exec on the host
    cwd: str
    env: Mapping[str, str]  # the COMPLETE child environment (container env goes in by name)
    container_name: str | None  # set when argv starts a container
    engine: Engine | None  # the engine that starts it (to stop/remove it by name)
    # set when argv execs in a warm session's container (`<engine> exec`): stopped by signals
    # to its process inside that container, never by stopping the container
    exec_spec: ExecSpec | None = None


@dataclass(frozen=True)
class StreamSecrets:
    """What a streamed job (container_transport='stream') carries to its bootstrap in the
    payload, never in a file, an argv or a repr: prompt answers and an ssh private key."""

    passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    ssh_key: str | None = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return bool(self.passwords) or bool(self.ssh_key)
