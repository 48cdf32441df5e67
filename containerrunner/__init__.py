"""containerrunner: run Ansible and any command on the host or in an EE container image.

The public API follows ansible-runner's (`import containerrunner as ansible_runner` works for
the helpers below); see docs/python-api.md.
"""

from __future__ import annotations

from containerrunner import results
from containerrunner.errors import (
    CommandError,
    ConfigurationError,
    ContainerRunnerError,
    EngineError,
    ImageNotFoundError,
    OutputParseError,
    RegistryLoginError,
)
from containerrunner.failures import Failure
from containerrunner.group import Group, GroupProgress, GroupResult, run_group, run_group_async
from containerrunner.interface import (
    get_ansible_config,
    get_ansible_config_async,
    get_inventory,
    get_inventory_async,
    get_plugin_docs,
    get_plugin_docs_async,
    get_plugin_list,
    get_plugin_list_async,
    get_role_argspec,
    get_role_argspec_async,
    get_role_list,
    get_role_list_async,
    run,
    run_async,
    run_command,
    run_command_async,
)
from containerrunner.progress import Progress
from containerrunner.results import Summary, TaskResult
from containerrunner.runner import Runner
from containerrunner.runner_config import RunnerConfig
from containerrunner.session import Session
from containerrunner.streams import (
    Event,
    Exited,
    IdleTimeout,
    JobStream,
    Output,
    Status,
    TotalTimeout,
    stream,
)
from containerrunner.version import __version__

__all__ = [
    "CommandError",
    "ConfigurationError",
    "ContainerRunnerError",
    "EngineError",
    "Event",
    "Exited",
    "Failure",
    "Group",
    "GroupProgress",
    "GroupResult",
    "IdleTimeout",
    "ImageNotFoundError",
    "JobStream",
    "Output",
    "OutputParseError",
    "Progress",
    "RegistryLoginError",
    "Runner",
    "RunnerConfig",
    "Session",
    "Status",
    "Summary",
    "TaskResult",
    "TotalTimeout",
    "__version__",
    "get_ansible_config",
    "get_ansible_config_async",
    "get_inventory",
    "get_inventory_async",
    "get_plugin_docs",
    "get_plugin_docs_async",
    "get_plugin_list",
    "get_plugin_list_async",
    "get_role_argspec",
    "get_role_argspec_async",
    "get_role_list",
    "get_role_list_async",
    "results",
    "run",
    "run_async",
    "run_command",
    "run_command_async",
    "run_group",
    "run_group_async",
    "stream",
]
