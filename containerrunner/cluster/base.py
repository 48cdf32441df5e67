"""The scheduler backend interface: a job on a cluster scheduler is a stream job.

A job with `scheduler="swarm"` or `"kubernetes"` is a `container_transport="stream"` job whose
engine process is not `<engine> run -i ...` but a *scheduler adapter*
(`python -m containerrunner.cluster.adapter SPEC`): the relay (streaming/relay.py) starts it,
writes the job's payload on its stdin and reads the bootstrap's stream from its stdout. The
adapter submits the job to the scheduler through a `SchedulerBackend`, follows the job's
output, exits with its return code and removes what it created (also on SIGTERM, SIGINT and a
closed stdout). Jobs whose owner died are removed by `reap` at the next job's start.

Every backend registers itself in `BACKENDS` under its name; `backend_for(name, options)`
makes one.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import ConfigurationError
from containerrunner.isolation.engine import (
    LABEL,
    LABEL_IDENT,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_UID,
)

#: the schedulers `scheduler=` accepts ("local": the engine on this machine)
SCHEDULERS = ("local", "swarm", "kubernetes")

#: backend name -> "module:attribute" of its class (imported on first use)
BACKENDS: dict[str, str] = {
    "swarm": "containerrunner.cluster.swarm:SwarmBackend",
    "kubernetes": "containerrunner.cluster.kubernetes:KubernetesBackend",
}

#: the adapter's environment variable with the registry password (never in its spec file)
REGISTRY_PASSWORD = "CONTAINERRUNNER_REGISTRY_PASSWORD"

#: the record of where a job ran, in its artifacts dir
SCHEDULER_RECORD = "scheduler.json"

#: labels every cluster job carries: the same names as our containers' labels
LABEL_MANAGED = LABEL
JOB_LABELS = (LABEL, LABEL_IDENT, LABEL_OWNER_PID, LABEL_OWNER_HOST, LABEL_OWNER_UID)


@dataclass(frozen=True)
class SchedulerOptions:
    """What a scheduler needs beyond the image and the command.

    `constraints`: placement (swarm `--constraint node.labels.x==y`; kubernetes nodeSelector
    entries `key=value`); `cpu_limit` in CPUs (e.g. "0.5"), `memory_limit` as the scheduler
    writes it ("256M", "256Mi"); `namespace`, `service_account`, `image_pull_secrets`: kubernetes;
    `registry_auth`: swarm (`--with-registry-auth` after a login) and kubernetes (a pull secret
    made for the job); `engine_url`: the swarm manager (e.g. `unix:///run/docker.sock`,
    `tcp://...`), the kubeconfig context for kubernetes; `extra`: backend-specific keys.
    """

    constraints: tuple[str, ...] = ()
    cpu_limit: str | None = None
    memory_limit: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    registry_auth: RegistryAuth | None = None
    engine_url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, given: Mapping[str, Any] | SchedulerOptions | None) -> SchedulerOptions:
        """Validated options from a dict (the `scheduler_options=` keyword), naming bad keys."""
        if given is None:
            return cls()
        if isinstance(given, SchedulerOptions):
            return given
        if not isinstance(given, Mapping):
            raise ConfigurationError(
                f"scheduler_options must be a dict, not {type(given).__name__}"
            )
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigurationError(
                f"scheduler_options: unknown key(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        values = dict(given)
        for name in ("constraints", "image_pull_secrets"):
            if name in values:
                item = values[name]
                if isinstance(item, str) or not isinstance(item, Sequence):
                    raise ConfigurationError(f"scheduler_options[{name!r}] must be a list of str")
                values[name] = tuple(str(v) for v in item)
        if "registry_auth" in values and not isinstance(values["registry_auth"], RegistryAuth):
            try:
                values["registry_auth"] = RegistryAuth.from_value(values["registry_auth"])
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"scheduler_options['registry_auth']: {exc} (the keys of container_auth_data)"
                ) from exc
        for name in ("cpu_limit", "memory_limit"):
            if values.get(name) is not None:
                values[name] = str(values[name])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The options as the adapter's spec file holds them: no registry password (the
        adapter takes it from CONTAINERRUNNER_REGISTRY_PASSWORD in its environment)."""
        data = asdict(self)
        if self.registry_auth is not None:
            data["registry_auth"] = {
                "host": self.registry_auth.host,
                "username": self.registry_auth.username,
                "password": "",
                "verify_ssl": self.registry_auth.verify_ssl,
            }
        data["extra"] = dict(self.extra)
        return data


@dataclass(frozen=True)
class ClusterJobRef:
    """One job we made on a scheduler (a swarm service, a kubernetes pod or job)."""

    backend: str
    id: str
    owner_pid: int | None
    owner_host: str | None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AdapterSpec:
    """The JSON file `python -m containerrunner.cluster.adapter SPEC` reads."""

    backend: str
    options: dict[str, Any]
    image: str
    command: list[str]  # the bootstrap's argv (python3 -c BOOTSTRAP)
    labels: dict[str, str]
    ident: str
    #: names of the job's environment variables: the adapter takes their values from its own
    #: environment (the relay's), so no value is written to disk
    env_names: list[str] = field(default_factory=list)
    workdir: str | None = None
    #: the job's artifacts dir: the adapter writes SCHEDULER_RECORD there (backend, job, node)
    report_dir: str | None = None

    def write(self, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(self), out)

    def env(self) -> dict[str, str]:
        """The job's environment: the named variables' values from this process's."""
        return {name: os.environ[name] for name in self.env_names if name in os.environ}

    def scheduler_options(self) -> SchedulerOptions:
        """The options, with the registry password from this process's environment."""
        options = dict(self.options)
        auth = options.get("registry_auth")
        if isinstance(auth, Mapping):
            options["registry_auth"] = {**auth, "password": os.environ.get(REGISTRY_PASSWORD, "")}
        return SchedulerOptions.from_mapping(options)

    @classmethod
    def read(cls, path: str) -> AdapterSpec:
        with open(path, encoding="utf-8") as fh:
            return cls(**json.load(fh))


class SchedulerBackend(Protocol):
    """One scheduler. `submit`/`follow`/`remove` are what the adapter calls for one job."""

    name: str

    def adapter_argv(self, spec_path: str) -> list[str]:
        """The process the relay runs instead of the engine (reads the payload on stdin)."""
        ...

    def submit(self, spec: AdapterSpec, payload: bytes) -> ClusterJobRef:
        """Start the job with `payload` as the bootstrap's stdin; returns its reference."""
        ...

    def follow(self, ref: ClusterJobRef) -> Iterator[bytes]:
        """The bootstrap's stdout, as it comes, until the job ends."""
        ...

    def exit_code(self, ref: ClusterJobRef) -> int:
        """The job's exit code once `follow` has ended (125: it never ran)."""
        ...

    def node_of(self, ref: ClusterJobRef) -> str | None:
        """The node that ran (runs) the job, when the scheduler says."""
        ...

    def list_ours(self) -> list[ClusterJobRef]:
        """Every job on the scheduler carrying our labels."""
        ...

    def remove(self, ref: ClusterJobRef) -> None:
        """Remove the job and everything made for it (secrets); no error when gone."""
        ...

    def reap(self, is_alive: Callable[[ClusterJobRef], bool]) -> list[ClusterJobRef]:
        """Remove our jobs whose owner is not alive; returns those removed."""
        ...


def owner_alive(ref: ClusterJobRef) -> bool:
    """False only for a job whose owner is a process of this host that is gone (the reaper's
    test: jobs of other hosts, or without an owner label, are left alone)."""
    import socket

    from containerrunner.procinfo import pid_alive

    if ref.owner_host != socket.gethostname() or ref.owner_pid is None:
        return True
    return pid_alive(ref.owner_pid)


def adapter_argv(spec_path: str) -> list[str]:
    """The adapter process for every backend (the backend is named in the spec)."""
    import sys

    return [sys.executable, "-m", "containerrunner.cluster.adapter", spec_path]


def check_scheduler(name: Any) -> str:
    if name is None:
        return "local"
    if name not in SCHEDULERS:
        raise ConfigurationError(f"scheduler must be one of {', '.join(SCHEDULERS)}, not {name!r}")
    return str(name)


def backend_for(
    name: str, options: SchedulerOptions | Mapping[str, Any] | None = None
) -> SchedulerBackend:
    """The backend registered as `name`, made with `options`."""
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigurationError(
            f"no scheduler backend {name!r} (known: {', '.join(sorted(BACKENDS))})"
        )
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"scheduler {name!r} is not available: {exc}") from exc
    backend: SchedulerBackend = getattr(module, attribute)(SchedulerOptions.from_mapping(options))
    return backend
