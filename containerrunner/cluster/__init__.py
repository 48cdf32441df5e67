"""Scheduler backends: jobs as Docker Swarm services or Kubernetes pods (see base.py)."""

from containerrunner.cluster.base import (
    AdapterSpec,
    ClusterJobRef,
    SchedulerBackend,
    SchedulerOptions,
    backend_for,
)

__all__ = [
    "AdapterSpec",
    "ClusterJobRef",
    "SchedulerBackend",
    "SchedulerOptions",
    "backend_for",
]
