"""containerrunner: run Ansible and any command on the host or in an EE container image.

The public API follows ansible-runner's (`import containerrunner as ansible_runner` works for
the helpers below); see docs/python-api.md.

The top level is lazy (PEP 562): `import containerrunner` loads only the errors and the
version; each public name imports its module on first use, so a script that calls
`run_command` does not pay for groups, sessions, streams or YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from containerrunner.errors import (
    CommandError,
    ConfigurationError,
    ContainerRunnerError,
    CredentialHelperError,
    EngineError,
    ImageNotFoundError,
    OutputParseError,
    RegistryLoginError,
)
from containerrunner.version import __version__

if TYPE_CHECKING:
    from containerrunner import results
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

_INTERFACE = (
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
    "run",
    "run_async",
    "run_command",
    "run_command_async",
)
_STREAMS = ("Event", "Exited", "IdleTimeout", "JobStream", "Output", "Status", "TotalTimeout")

#: public name -> the module that defines it, imported on first use
_LAZY: dict[str, str] = {
    **dict.fromkeys(_INTERFACE, "containerrunner.interface"),
    **dict.fromkeys(_STREAMS, "containerrunner.streams"),
    "stream": "containerrunner.streams",
    "Failure": "containerrunner.failures",
    "Group": "containerrunner.group",
    "GroupProgress": "containerrunner.group",
    "GroupResult": "containerrunner.group",
    "run_group": "containerrunner.group",
    "run_group_async": "containerrunner.group",
    "Progress": "containerrunner.progress",
    "Summary": "containerrunner.results",
    "TaskResult": "containerrunner.results",
    "Runner": "containerrunner.runner",
    "RunnerConfig": "containerrunner.runner_config",
    "Session": "containerrunner.session",
}

#: public submodules, imported on first use
_SUBMODULES = frozenset({"results"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "CommandError",
    "ConfigurationError",
    "ContainerRunnerError",
    "CredentialHelperError",
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
