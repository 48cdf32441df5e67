"""The job specification: one validated, immutable description of what to run and how."""

from containerrunner.config.execution import (
    ENGINE_CHOICES,
    PULL_POLICIES,
    ExecutionOptions,
)

__all__ = ["ENGINE_CHOICES", "PULL_POLICIES", "ExecutionOptions"]
