"""Execution options shared by every helper: where and how a job runs.

`ExecutionOptions.from_kwargs` is the one door: it validates the public keyword arguments
(`process_isolation`, `container_image`, ...) and gives back a frozen value that the lower
layers take instead of long keyword lists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import ConfigurationError
from containerrunner.validate import (
    DEFAULT_TERMINATION_GRACE,
    as_env,
    as_grace,
    as_str_tuple,
    as_timeout,
)

if TYPE_CHECKING:
    from containerrunner.cluster.base import SchedulerOptions
    from containerrunner.session import Session

# the engines' endpoint schemes and variables (isolation.engine, which imports this module)
ENDPOINT_SCHEMES: tuple[str, ...] = ("unix", "tcp", "ssh")
REMOTE_SCHEMES: tuple[str, ...] = ("tcp", "ssh")
ENDPOINT_VARIABLES: dict[str, str] = {"podman": "CONTAINER_HOST", "docker": "DOCKER_HOST"}


def is_remote(endpoint: str | None) -> bool:
    """Whether `endpoint` (an engine URL) is on another machine: tcp:// or ssh://."""
    return endpoint is not None and endpoint.split("://", 1)[0] in REMOTE_SCHEMES


EngineChoice = Literal["auto", "podman", "docker"]
PullPolicy = Literal["always", "missing", "never", "newer"]
ENGINE_CHOICES: tuple[str, ...] = ("auto", "podman", "docker")
PULL_POLICIES: tuple[str, ...] = ("always", "missing", "never", "newer")
# how the job's files reach the container: bind mounts, or a stream on its stdin (no mounts)
Transport = Literal["mounts", "stream"]
TRANSPORTS: tuple[str, ...] = ("mounts", "stream")

DEFAULT_IMAGE = "localhost/containerrunner-ee:latest"

# container_network: an engine network mode or network name (`host`, `none`, `bridge`,
# `my-net`, ...), `container:NAME` (another container's network), or podman's `ns:/path`.
_NETWORK = re.compile(r"(?:container:)?[A-Za-z0-9][A-Za-z0-9_.-]*|ns:/\S+")
# the engine `run` options that set the network, which container_network replaces
NETWORK_FLAGS: tuple[str, ...] = ("--network", "--net")

# The execution keyword arguments besides `envvars` (which run() merges with env/envvars),
# handed to ExecutionOptions.from_kwargs.
EXECUTION_KWARGS: tuple[str, ...] = (
    "process_isolation",
    "process_isolation_executable",
    "container_image",
    "container_options",
    "container_volume_mounts",
    "container_workdir",
    "container_network",
    "container_transport",
    "engine_url",
    "host_cwd",
    "secret_envvars",
    "timeout",
    "job_timeout",
    "idle_timeout",
    "start_timeout",
    "termination_grace",
    "pull",
    "container_auth_data",
    "session",
    "scheduler",
    "scheduler_options",
)


@dataclass(frozen=True)
class ExecutionOptions:
    """Where and how a job runs: on the host, or in a container of an EE image."""

    process_isolation: bool = False
    engine: EngineChoice = "auto"
    container_image: str = DEFAULT_IMAGE
    container_options: tuple[str, ...] = ()
    container_volume_mounts: tuple[str, ...] = ()
    container_workdir: str | None = None
    # `--network=...` for the container; None: the engine's default network
    container_network: str | None = None
    # mounts: bind mounts; stream: files sent on the container's stdin (streaming/relay.py)
    transport: Transport = "mounts"
    # where the engine's client connects (unix://, tcp://, ssh://); None: as the caller's
    # environment says (DOCKER_HOST, CONTAINER_HOST), else the engine's default
    engine_url: str | None = None
    host_cwd: str | None = None
    envvars: Mapping[str, str] = field(default_factory=dict)
    secret_env_names: frozenset[str] = frozenset()
    job_timeout: float | None = None
    idle_timeout: float | None = None
    # the start phase (image presence or pull, container start); job_timeout and
    # idle_timeout then count from the start of the process in the container
    start_timeout: float | None = None
    termination_grace: float = DEFAULT_TERMINATION_GRACE  # SIGTERM .. SIGKILL on a stop
    pull: PullPolicy = "missing"
    # registry credentials for the pull (ansible-runner's container_auth_data)
    container_auth: RegistryAuth | None = None
    # a running warm EE session (containerrunner.Session): the job is exec'd in its container
    session: Session | None = field(default=None, compare=False)
    # "local": the engine on this machine; "swarm" / "kubernetes": a job on that scheduler
    # (a stream job whose engine process is the scheduler adapter, containerrunner.cluster)
    scheduler: str = "local"
    scheduler_options: SchedulerOptions | None = None

    @property
    def cwd(self) -> str:
        """The host directory the job runs in (and that is mounted as the container workdir)."""
        return os.path.abspath(self.host_cwd) if self.host_cwd else os.getcwd()

    @classmethod
    def from_kwargs(
        cls,
        *,
        process_isolation: Any = False,
        process_isolation_executable: Any = "auto",
        container_image: Any = None,
        container_options: Any = None,
        container_volume_mounts: Any = None,
        container_workdir: Any = None,
        container_network: Any = None,
        container_transport: Any = None,
        engine_url: Any = None,
        host_cwd: Any = None,
        envvars: Any = None,
        secret_envvars: Any = None,
        timeout: Any = None,
        job_timeout: Any = None,
        idle_timeout: Any = None,
        start_timeout: Any = None,
        termination_grace: Any = None,
        pull: Any = "missing",
        container_auth_data: Any = None,
        session: Any = None,
        scheduler: Any = None,
        scheduler_options: Any = None,
    ) -> ExecutionOptions:
        """Validate the public execution keyword arguments; errors name the offending option."""
        if session is not None:
            from containerrunner.session import check_session_options

            check_session_options(
                session,
                engine=process_isolation_executable,
                image=container_image,
                container_options=container_options,
                container_network=container_network,
            )
            process_isolation = True
            process_isolation_executable = session.engine_name
            container_image = session.image
        if not isinstance(process_isolation, bool):
            raise ConfigurationError(
                f"process_isolation must be True or False, not {process_isolation!r}"
            )
        engine = process_isolation_executable or "auto"
        if engine not in ENGINE_CHOICES:
            raise ConfigurationError(
                f"process_isolation_executable must be one of {', '.join(ENGINE_CHOICES)}; "
                f"got {engine!r}"
            )
        image = container_image or DEFAULT_IMAGE
        if not isinstance(image, str) or any(c.isspace() for c in image):
            raise ConfigurationError(f"container_image must be an image reference, not {image!r}")
        if pull not in PULL_POLICIES:
            raise ConfigurationError(
                f"pull policy must be one of {', '.join(PULL_POLICIES)}; got {pull!r}"
            )
        if host_cwd is not None and (not isinstance(host_cwd, str) or not os.path.isdir(host_cwd)):
            raise ConfigurationError(f"host_cwd {host_cwd!r} is not an existing directory")
        if container_workdir is not None and (
            not isinstance(container_workdir, str) or not container_workdir.startswith("/")
        ):
            raise ConfigurationError(
                f"container_workdir must be an absolute path, not {container_workdir!r}"
            )
        options = as_str_tuple(container_options, "container_options")
        network = _container_network(container_network, options)
        if container_transport is not None and container_transport not in TRANSPORTS:
            raise ConfigurationError(
                f"container_transport must be one of {', '.join(TRANSPORTS)}; "
                f"got {container_transport!r}"
            )
        url = _engine_url(engine_url, process_isolation)
        if url is not None and session is not None:
            raise ConfigurationError(
                f"engine_url={url!r} and session= both given: a warm session's container is on "
                "the engine it was started on; give one of them"
            )
        transport = container_transport or (
            "stream" if _remote_endpoint(url, engine, session) else "mounts"
        )
        if transport == "mounts" and url is not None and is_remote(url):
            raise ConfigurationError(
                f"container_transport='mounts' and engine_url={url!r} both given: a local path "
                "cannot be bind-mounted on a remote engine; leave container_transport out (a "
                "remote engine_url streams the job's files) or give 'stream'"
            )
        if transport == "stream" and session is not None:
            raise ConfigurationError(
                "container_transport='stream' and session= both given: a warm session's "
                "container has its mounts already; give one of them"
            )
        cluster_options = None
        scheduler = "local" if scheduler is None else scheduler
        if scheduler != "local":  # the cluster code is imported for a cluster job only
            from containerrunner.cluster.base import SchedulerOptions, check_scheduler

            scheduler = check_scheduler(scheduler)
            if session is not None or container_transport == "mounts":
                raise ConfigurationError(
                    f"scheduler={scheduler!r} runs the job as a stream job on the cluster: "
                    "it cannot be combined with "
                    + ("session=" if session is not None else "container_transport='mounts'")
                )
            process_isolation, transport = True, "stream"
            cluster_options = SchedulerOptions.from_mapping(scheduler_options)
        elif scheduler_options is not None:
            raise ConfigurationError("scheduler_options needs scheduler='swarm' or 'kubernetes'")
        if timeout is not None and job_timeout is not None and timeout != job_timeout:
            raise ConfigurationError("give either timeout or job_timeout, not both")
        env = as_env(envvars, "envvars")
        if process_isolation:
            _check_endpoint_envvars(env)
        secrets = frozenset(as_str_tuple(secret_envvars, "secret_envvars"))
        unknown = secrets - env.keys()
        if unknown:
            raise ConfigurationError(
                f"secret_envvars names {', '.join(sorted(unknown))}, which envvars does not set"
            )
        return cls(
            process_isolation=process_isolation,
            engine=cast(EngineChoice, engine),
            container_image=image,
            container_options=options,
            container_volume_mounts=as_str_tuple(
                container_volume_mounts, "container_volume_mounts"
            ),
            container_workdir=container_workdir,
            container_network=network,
            transport=cast(Transport, transport),
            engine_url=url,
            host_cwd=os.path.abspath(host_cwd) if host_cwd else None,
            envvars=env,
            secret_env_names=secrets,
            job_timeout=as_timeout(job_timeout if job_timeout is not None else timeout, "timeout"),
            idle_timeout=as_timeout(idle_timeout, "idle_timeout"),
            start_timeout=as_timeout(start_timeout, "start_timeout"),
            termination_grace=as_grace(termination_grace),
            pull=cast(PullPolicy, pull),
            container_auth=RegistryAuth.from_value(container_auth_data),
            session=session,
            scheduler=scheduler,
            scheduler_options=cluster_options,
        )


def _engine_url(value: Any, process_isolation: bool) -> str | None:
    """The validated engine_url: unix:///path, tcp://host:port or ssh://[user@]host[:port][/path]."""
    if value is None:
        return None
    if not process_isolation:
        raise ConfigurationError(
            f"engine_url={value!r} given without process_isolation=True: only a container job "
            "runs on an engine"
        )
    scheme = urlsplit(value).scheme if isinstance(value, str) else None
    if not isinstance(value, str) or scheme not in ENDPOINT_SCHEMES:
        raise ConfigurationError(
            "engine_url must be unix:///path/to.sock, tcp://host:port or "
            f"ssh://[user@]host[:port][/path]; got {value!r}"
        )
    parsed = urlsplit(value)
    try:
        parsed.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError as exc:
        raise ConfigurationError(f"engine_url {value!r}: {exc}") from None
    if parsed.scheme == "unix" and not parsed.path:
        raise ConfigurationError(f"engine_url {value!r} names no socket path (unix:///path)")
    if parsed.scheme != "unix" and not parsed.hostname:
        raise ConfigurationError(f"engine_url {value!r} names no host")
    return value


def _remote_endpoint(url: str | None, engine: str, session: Any) -> bool:
    """Whether the job's engine is on another machine: engine_url, else the caller's
    DOCKER_HOST / CONTAINER_HOST for the chosen engine (`auto`: either)."""
    if session is not None:
        return False
    if url is not None:
        return is_remote(url)
    names = tuple(ENDPOINT_VARIABLES) if engine == "auto" else (engine,)
    return any(is_remote(os.environ.get(ENDPOINT_VARIABLES[name])) for name in names)


def _check_endpoint_envvars(env: Mapping[str, str]) -> None:
    """A container job's envvars must not set the engines' endpoint variables: the engine's
    client would connect there for `run` while stop, rm and the reaper used another."""
    given = sorted(set(env) & set(ENDPOINT_VARIABLES.values()))
    if given:
        raise ConfigurationError(
            f"envvars sets {', '.join(given)}, the engine client's endpoint variable, for a "
            "container job: give engine_url= (--engine-url) to choose the engine, or set it in "
            "the caller's environment"
        )


def network_options(options: tuple[str, ...]) -> list[str]:
    """The engine `run` options among `options` that set the container's network."""
    return [o for o in options if o in NETWORK_FLAGS or o.startswith(("--network=", "--net="))]


def _container_network(value: Any, options: tuple[str, ...]) -> str | None:
    """The validated container_network (None: the engine's default network)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _NETWORK.fullmatch(value):
        raise ConfigurationError(
            f"container_network must be host, none, bridge, a network name, container:NAME or "
            f"(podman) ns:/path/to/netns; got {value!r}"
        )
    if value.startswith("ns:") and not os.path.exists(value[3:]):
        raise ConfigurationError(
            f"container_network {value!r}: no network namespace at {value[3:]} (create it first, "
            f"e.g. `ip netns add NAME` makes /run/netns/NAME)"
        )
    given = network_options(options)
    if given:
        raise ConfigurationError(
            f"container_network={value!r} and container_options {given} both set the container's "
            f"network: give one of them (container_network is the documented way)"
        )
    return value
