"""Execution options shared by every helper: where and how a job runs.

`ExecutionOptions.from_kwargs` is the one door: it validates the public keyword arguments
(`process_isolation`, `container_image`, ...) and gives back a frozen value that the lower
layers take instead of long keyword lists.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from containerrunner.errors import ConfigurationError

EngineChoice = Literal["auto", "podman", "docker"]
PullPolicy = Literal["always", "missing", "never", "newer"]
ENGINE_CHOICES: tuple[str, ...] = ("auto", "podman", "docker")
PULL_POLICIES: tuple[str, ...] = ("always", "missing", "never", "newer")

DEFAULT_IMAGE = "localhost/containerrunner-ee:latest"

# The execution keyword arguments besides `envvars` (which run() merges with env/envvars),
# handed to ExecutionOptions.from_kwargs.
EXECUTION_KWARGS: tuple[str, ...] = (
    "process_isolation",
    "process_isolation_executable",
    "container_image",
    "container_options",
    "container_volume_mounts",
    "container_workdir",
    "host_cwd",
    "secret_envvars",
    "timeout",
    "job_timeout",
    "idle_timeout",
    "pull",
)


def as_str_tuple(value: Any, option: str) -> tuple[str, ...]:
    """A list of strings from a list/tuple of strings; a lone string is refused with a hint."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigurationError(
            f"{option} must be a list of strings, not the string {value!r}; "
            f"use shlex.split({value!r}) to turn a command line into a list"
        )
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{option} must be a list of strings, not {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{option} must contain only strings; found {item!r} ({type(item).__name__})"
            )
    return tuple(items)


def as_env(value: Any, option: str) -> dict[str, str]:
    """A str->str mapping of environment variables; names are checked, values stringified."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{option} must be a mapping of NAME: value, not {value!r}")
    env: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ConfigurationError(f"{option}: invalid environment variable name {name!r}")
        if isinstance(val, bool):
            env[name] = "True" if val else "False"
        elif isinstance(val, str | int | float):
            env[name] = str(val)
        else:
            raise ConfigurationError(
                f"{option}[{name!r}] must be a string or number, not {type(val).__name__}"
            )
    return env


def as_timeout(value: Any, option: str) -> float | None:
    """None/0 means no timeout; otherwise a positive number of seconds."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{option} must be a number of seconds, not {value!r}")
    if value < 0:
        raise ConfigurationError(f"{option} must not be negative (got {value})")
    return float(value)


@dataclass(frozen=True)
class ExecutionOptions:
    """Where and how a job runs: on the host, or in a container of an EE image."""

    process_isolation: bool = False
    engine: EngineChoice = "auto"
    container_image: str = DEFAULT_IMAGE
    container_options: tuple[str, ...] = ()
    container_volume_mounts: tuple[str, ...] = ()
    container_workdir: str | None = None
    host_cwd: str | None = None
    envvars: Mapping[str, str] = field(default_factory=dict)
    secret_env_names: frozenset[str] = frozenset()
    job_timeout: float | None = None
    idle_timeout: float | None = None
    pull: PullPolicy = "missing"

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
        host_cwd: Any = None,
        envvars: Any = None,
        secret_envvars: Any = None,
        timeout: Any = None,
        job_timeout: Any = None,
        idle_timeout: Any = None,
        pull: Any = "missing",
    ) -> ExecutionOptions:
        """Validate the public execution keyword arguments; errors name the offending option."""
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
        if timeout is not None and job_timeout is not None and timeout != job_timeout:
            raise ConfigurationError("give either timeout or job_timeout, not both")
        env = as_env(envvars, "envvars")
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
            container_options=as_str_tuple(container_options, "container_options"),
            container_volume_mounts=as_str_tuple(
                container_volume_mounts, "container_volume_mounts"
            ),
            container_workdir=container_workdir,
            host_cwd=os.path.abspath(host_cwd) if host_cwd else None,
            envvars=env,
            secret_env_names=secrets,
            job_timeout=as_timeout(job_timeout if job_timeout is not None else timeout, "timeout"),
            idle_timeout=as_timeout(idle_timeout, "idle_timeout"),
            pull=cast(PullPolicy, pull),
        )
