"""The public helpers: thin, each builds a Job (or a RunnerConfig) and runs it.

Every helper takes the execution options (`process_isolation`, `process_isolation_executable`,
`container_image`, `container_options`, `container_volume_mounts`, `container_workdir`,
`host_cwd`, `envvars`, `timeout`, ...) as keyword arguments; an option a helper does not know
raises ConfigurationError naming it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from containerrunner import commands, responses
from containerrunner.config.execution import EXECUTION_KWARGS
from containerrunner.errors import ConfigurationError
from containerrunner.jobs import build_command_job
from containerrunner.runner import Runner
from containerrunner.runner_config import CommandRunnerConfig, RunnerConfig
from containerrunner.validate import HANDLER_NAMES, as_str_tuple, check_handlers

# Options every command-style helper accepts, besides its own parameters.
EXECUTION_OPTIONS = frozenset({*EXECUTION_KWARGS, "envvars"})
HANDLERS = frozenset(HANDLER_NAMES)
COMMAND_OPTIONS = (
    EXECUTION_OPTIONS
    | HANDLERS
    | {
        "private_data_dir",
        "artifact_dir",
        "ident",
        "passwords",
        "ssh_key",
        "settings",
        "runner_mode",
        "input_fd",
        "output_fd",
        "error_fd",
        "quiet",
        "rotate_artifacts",
        "suppress_output_file",
        "json_mode",
    }
)


def _check_options(options: dict[str, Any], allowed: frozenset[str], helper: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigurationError(
            f"{helper}() got unknown option(s): {', '.join(unknown)}; "
            f"it accepts: {', '.join(sorted(allowed))}"
        )


def _command_runner(command: Sequence[str], options: dict[str, Any], helper: str) -> Runner:
    """A Runner for `command` (its Runner removes the job's runtime dir when it ends)."""
    _check_options(options, COMMAND_OPTIONS, helper)
    handlers = check_handlers(options)
    return Runner(CommandRunnerConfig(build_command_job(command, options, helper)), **handlers)


def _run_foreground(
    command: Sequence[str], options: dict[str, Any], helper: str
) -> tuple[str, str, int]:
    """Run to the end and return (stdout, stderr, rc)."""
    runner = _command_runner(command, options, helper)
    runner.run()
    with runner.stdout as out, runner.stderr as err:
        return out.read(), err.read(), runner.rc if runner.rc is not None else -1


def _run_background(
    command: Sequence[str], options: dict[str, Any], helper: str
) -> tuple[threading.Thread, Runner]:
    """Start in a thread; the caller reads runner.stdout/stderr once it has ended."""
    runner = _command_runner(command, options, helper)
    return runner.start(), runner


def _command(executable_cmd: str, cmdline_args: Any) -> list[str]:
    if not isinstance(executable_cmd, str) or not executable_cmd:
        raise ConfigurationError(f"executable_cmd must be a command name, not {executable_cmd!r}")
    return [executable_cmd, *as_str_tuple(cmdline_args, "cmdline_args")]


# ---------------------------------------------------------------------- run / run_async
def run(**kwargs: Any) -> Runner:
    """Run a playbook, an ad-hoc module or a role; returns the finished Runner."""
    config, handlers = RunnerConfig.from_run_kwargs(**kwargs)
    config.prepare()
    runner = Runner(config=config, **handlers)
    runner.run()
    return runner


def run_async(**kwargs: Any) -> tuple[threading.Thread, Runner]:
    """Like run(), in a thread; returns (thread, runner) at once."""
    config, handlers = RunnerConfig.from_run_kwargs(**kwargs)
    config.prepare()
    runner = Runner(config=config, **handlers)
    return runner.start(), runner


# ---------------------------------------------------------------------- run_command
def run_command(
    executable_cmd: str, cmdline_args: Sequence[str] | None = None, **options: Any
) -> tuple[str, str, int]:
    """Run any command (locally or in the EE); returns (stdout, stderr, rc).

    Interactive when `input_fd`/`output_fd`/`error_fd` are given (`runner_mode='subprocess'`);
    with `passwords` (regex -> answer) the command runs under a pty and prompts are answered.
    """
    return _run_foreground(_command(executable_cmd, cmdline_args or []), options, "run_command")


def run_command_async(
    executable_cmd: str, cmdline_args: Sequence[str] | None = None, **options: Any
) -> tuple[threading.Thread, Runner]:
    return _run_background(_command(executable_cmd, cmdline_args or []), options, "run_command")


# ---------------------------------------------------------------------- ansible utilities
def _utility(
    argv: Sequence[str],
    options: dict[str, Any],
    helper: str,
    response_format: str | None,
    *,
    plugin_files: bool = False,
) -> tuple[Any, str]:
    """(response, stderr) as ansible-runner gives them: a non-zero exit of the tool is no
    exception (see responses.utility_response); containerrunner's own errors still raise."""
    out, err, rc = _run_foreground(argv, options, helper)
    return responses.utility_response(out, err, rc, response_format, plugin_files=plugin_files)


def get_plugin_docs(
    plugin_names: Sequence[str],
    plugin_type: str | None = None,
    response_format: str | None = None,
    snippet: bool = False,
    playbook_dir: str | None = None,
    module_path: str | None = None,
    **options: Any,
) -> tuple[Any, str]:
    """`ansible-doc` for `plugin_names`: (docs, stderr); docs is a dict for 'json'."""
    argv = commands.plugin_docs_argv(
        plugin_names, plugin_type, response_format, snippet, playbook_dir, module_path
    )
    return _utility(argv, options, "get_plugin_docs", response_format)


def get_plugin_docs_async(
    plugin_names: Sequence[str],
    plugin_type: str | None = None,
    response_format: str | None = None,
    snippet: bool = False,
    playbook_dir: str | None = None,
    module_path: str | None = None,
    **options: Any,
) -> tuple[threading.Thread, Runner]:
    argv = commands.plugin_docs_argv(
        plugin_names, plugin_type, response_format, snippet, playbook_dir, module_path
    )
    return _run_background(argv, options, "get_plugin_docs")


def get_plugin_list(
    list_files: bool = False,
    response_format: str | None = None,
    plugin_type: str | None = None,
    playbook_dir: str | None = None,
    module_path: str | None = None,
    **options: Any,
) -> tuple[Any, str]:
    """`ansible-doc -l` (or `-F` with list_files): (list, stderr); with list_files and 'json',
    a {plugin: path} mapping read from the text listing (`-F -j` fails in ansible-core)."""
    argv = commands.plugin_list_argv(
        list_files, response_format, plugin_type, playbook_dir, module_path
    )
    as_text = commands.lists_files_as_text(list_files, response_format, plugin_type)
    return _utility(argv, options, "get_plugin_list", response_format, plugin_files=as_text)


def get_plugin_list_async(
    list_files: bool = False,
    response_format: str | None = None,
    plugin_type: str | None = None,
    playbook_dir: str | None = None,
    module_path: str | None = None,
    **options: Any,
) -> tuple[threading.Thread, Runner]:
    argv = commands.plugin_list_argv(
        list_files, response_format, plugin_type, playbook_dir, module_path
    )
    return _run_background(argv, options, "get_plugin_list")


def get_inventory(
    action: str,
    inventories: Sequence[str],
    response_format: str | None = None,
    host: str | None = None,
    playbook_dir: str | None = None,
    vault_ids: str | None = None,
    vault_password_file: str | None = None,
    output_file: str | None = None,
    export: bool | None = None,
    **options: Any,
) -> tuple[Any, str]:
    """`ansible-inventory --list|--host|--graph`: (inventory, stderr); a dict for 'json', else
    text (the graph is always text)."""
    argv = commands.inventory_argv(
        action, inventories, response_format, host, playbook_dir, vault_ids,
        vault_password_file, output_file, export,
    )  # fmt: skip
    fmt = response_format if action != "graph" else None
    return _utility(argv, options, "get_inventory", fmt)


def get_inventory_async(
    action: str,
    inventories: Sequence[str],
    response_format: str | None = None,
    host: str | None = None,
    playbook_dir: str | None = None,
    vault_ids: str | None = None,
    vault_password_file: str | None = None,
    output_file: str | None = None,
    export: bool | None = None,
    **options: Any,
) -> tuple[threading.Thread, Runner]:
    argv = commands.inventory_argv(
        action, inventories, response_format, host, playbook_dir, vault_ids,
        vault_password_file, output_file, export,
    )  # fmt: skip
    return _run_background(argv, options, "get_inventory")


def get_ansible_config(
    action: str,
    config_file: str | None = None,
    only_changed: bool | None = None,
    **options: Any,
) -> tuple[str, str]:
    """`ansible-config list|dump|view`: (text, stderr)."""
    argv = commands.config_argv(action, config_file, only_changed)
    out, err = _utility(argv, options, "get_ansible_config", None)
    return str(out), err


def get_ansible_config_async(
    action: str,
    config_file: str | None = None,
    only_changed: bool | None = None,
    **options: Any,
) -> tuple[threading.Thread, Runner]:
    return _run_background(
        commands.config_argv(action, config_file, only_changed), options, "get_ansible_config"
    )


def get_role_list(
    collection: str | None = None, playbook_dir: str | None = None, **options: Any
) -> tuple[Any, str]:
    """Roles with an argument spec (`ansible-doc -t role -l -j`): (dict, stderr)."""
    argv = commands.role_list_argv(collection, playbook_dir)
    return _utility(argv, options, "get_role_list", "json")


def get_role_list_async(
    collection: str | None = None, playbook_dir: str | None = None, **options: Any
) -> tuple[threading.Thread, Runner]:
    return _run_background(
        commands.role_list_argv(collection, playbook_dir), options, "get_role_list"
    )


def get_role_argspec(
    role: str, collection: str | None = None, playbook_dir: str | None = None, **options: Any
) -> tuple[Any, str]:
    """A role's argument spec (`ansible-doc -t role -j`): (dict, stderr)."""
    argv = commands.role_argspec_argv(role, collection, playbook_dir)
    return _utility(argv, options, "get_role_argspec", "json")


def get_role_argspec_async(
    role: str, collection: str | None = None, playbook_dir: str | None = None, **options: Any
) -> tuple[threading.Thread, Runner]:
    return _run_background(
        commands.role_argspec_argv(role, collection, playbook_dir), options, "get_role_argspec"
    )
