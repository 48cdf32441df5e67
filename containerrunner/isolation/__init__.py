"""Isolation: run a command on the host or inside an EE container with podman or docker."""

from __future__ import annotations

from containerrunner.isolation.argv import build_run_argv
from containerrunner.isolation.containerize import container_labels, container_name, containerize
from containerrunner.isolation.engine import Engine, EngineName, detect_engine, make_engine
from containerrunner.isolation.images import (
    engine_version,
    ensure_image,
    image_digest,
    image_exists,
    is_pinned,
    pin_matches,
)
from containerrunner.isolation.mounts import (
    is_system_dir,
    mounts_from_ansible_args,
    mounts_from_env,
    normalise_mounts,
    parse_volume_mount,
)
from containerrunner.isolation.reaper import (
    OwnedContainer,
    list_ours,
    reap_orphans,
    remove_container,
)
from containerrunner.isolation.types import ContainerSpec, Invocation, Mount

__all__ = [
    "ContainerSpec",
    "Engine",
    "EngineName",
    "Invocation",
    "Mount",
    "OwnedContainer",
    "build_run_argv",
    "container_labels",
    "container_name",
    "containerize",
    "detect_engine",
    "engine_version",
    "ensure_image",
    "image_digest",
    "image_exists",
    "is_pinned",
    "is_system_dir",
    "list_ours",
    "make_engine",
    "mounts_from_ansible_args",
    "mounts_from_env",
    "normalise_mounts",
    "parse_volume_mount",
    "pin_matches",
    "reap_orphans",
    "remove_container",
]
