"""What the engine clients answer (the same for the API and the CLI, podman and docker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from containerrunner.config.registry_auth import RegistryAuth
    from containerrunner.isolation.pulls import PullListener

# What a forced remove did: removed it, it was gone already, or the engine is removing it
# (docker's `--rm` racing ours: wait for its removal event).
Removal = Literal["removed", "gone", "in-progress"]


class Unreachable(Exception):
    """The engine's API cannot be reached (no socket, connection refused or reset): the
    client reconnects or falls back to the CLI. Never leaves isolation/."""


@dataclass(frozen=True)
class ImageInfo:
    """A local image: ID (`sha256:<hex>`), labels, RepoDigests (`name@sha256:...`)."""

    id: str
    labels: dict[str, str] = field(default_factory=dict)
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerInfo:
    """A container as a list by label gives it; `state` lower-case (running, exited, ...)."""

    name: str
    id: str
    labels: dict[str, str]
    state: str


class Backend(Protocol):
    """One way of asking an engine (its library over the API, or its CLI).

    Errors: EngineError (the engine refused), EngineTimeoutError; an API backend raises
    Unreachable when it cannot reach the engine at all.
    """

    via: str

    def version(self) -> str: ...

    def image(self, ref: str, timeout: float | None = None) -> ImageInfo | None: ...

    def containers(self, label: str) -> list[ContainerInfo]: ...

    def inspect(self, name: str) -> dict[str, Any] | None: ...

    def stop(self, name: str, grace: int) -> bool: ...

    def kill(self, name: str, signal: str) -> bool: ...

    def remove(self, name: str) -> Removal: ...

    def pull(
        self,
        image: str,
        listener: PullListener | None,
        timeout: float,
        auth: RegistryAuth | None = None,
        auth_dir: str | None = None,
    ) -> None: ...


def normalise_id(image_id: str) -> str:
    """`sha256:<hex>` for both engines (podman's CLI and API give the bare hex)."""
    return image_id if ":" in image_id else f"sha256:{image_id}"


def image_info(data: dict[str, Any]) -> ImageInfo:
    """An ImageInfo out of an image inspect document (podman: `Labels`; docker:
    `Config.Labels`)."""
    config = data.get("Config") or {}
    labels = data.get("Labels") or config.get("Labels") or {}
    return ImageInfo(
        id=normalise_id(str(data["Id"])),
        labels={str(k): str(v) for k, v in labels.items()},
        repo_digests=tuple(str(d) for d in data.get("RepoDigests") or ()),
    )


def container_info(data: dict[str, Any]) -> ContainerInfo:
    """A ContainerInfo out of a container list entry (`Names`, `Labels`, `State`) or a
    container inspect document (`Name`, `Config.Labels`, `State.Status`)."""
    names = data.get("Names")
    if names:
        name = str(names[0] if isinstance(names, list) else str(names).split(",")[0])
    else:
        name = str(data.get("Name", ""))
    state = data.get("State")
    if isinstance(state, dict):
        state = state.get("Status", "")
    labels = data.get("Labels")
    if labels is None:
        labels = (data.get("Config") or {}).get("Labels")
    return ContainerInfo(
        name=name.lstrip("/"),
        id=str(data.get("Id", data.get("ID", ""))),
        labels={str(k): str(v) for k, v in (labels or {}).items()},
        state=str(state or "").lower(),
    )
