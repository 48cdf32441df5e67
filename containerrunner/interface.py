"""The public helpers: thin, each builds a Job (or a RunnerConfig) and runs it.

Every helper takes the execution options (`process_isolation`, `process_isolation_executable`,
`container_image`, `container_options`, `container_volume_mounts`, `container_workdir`,
`host_cwd`, `envvars`, `timeout`, ...) as keyword arguments; an option a helper does not know
raises ConfigurationError naming it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec

from containerrunner import commands, responses
from containerrunner.config.execution import EXECUTION_KWARGS
from containerrunner.errors import ConfigurationError
from containerrunner.jobs import build_command_job
from containerrunner.runner import Runner
from containerrunner.runner_config import CommandRunnerConfig, RunnerConfig
from containerrunner.validate import HANDLER_NAMES, as_str_tuple, check_handlers

P = ParamSpec("P")
AsyncResult = tuple[threading.Thread, Runner]

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


#: called with (helper name, its arguments by name) on every call of a public helper, before
#: anything is checked; containerrunner.testing records the calls through it
CALL_OBSERVERS: list[Callable[[str, dict[str, Any]], None]] = []


def observe(
    name: str, build: Callable[..., Any] | None, args: Sequence[Any], kwargs: dict[str, Any]
) -> None:
    if not CALL_OBSERVERS:
        return
    arguments = dict(kwargs)
    if build is not None:
        try:
            bound = inspect.signature(build).bind(*args, **kwargs).arguments
        except TypeError:  # the call itself raises it, as Python would
            return
        arguments = {k: v for k, v in bound.items() if k != "options"}
        arguments.update(bound.get("options", {}))
    for observer in list(CALL_OBSERVERS):
        observer(name, arguments)


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
    runner.unobserved = True  # never handed out: see Runner.unobserved
    runner.run()
    with runner.stdout as out, runner.stderr as err:
        return out.read(), err.read(), runner.rc if runner.rc is not None else -1


def _command(executable_cmd: str, cmdline_args: Any) -> list[str]:
    if not isinstance(executable_cmd, str) or not executable_cmd:
        raise ConfigurationError(f"executable_cmd must be a command name, not {executable_cmd!r}")
    return [executable_cmd, *as_str_tuple(cmdline_args, "cmdline_args")]


# ---------------------------------------------------------------------- helper generation
@dataclass(frozen=True)
class _Call:
    """What a command helper runs: its argv and options, and how its output is read."""

    argv: Sequence[str]
    options: dict[str, Any]
    helper: str
    response_format: str | None = None
    plugin_files: bool = False  # the response is read from an `ansible-doc -F` listing


def _named(function: Callable[..., Any], build: Callable[..., Any], name: str, doc: str) -> None:
    """`function` shows `build`'s parameters under `name`, with its own return annotation."""
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    function.__module__ = __name__
    returns = inspect.signature(function).return_annotation
    function.__signature__ = inspect.signature(build).replace(  # type: ignore[attr-defined]
        return_annotation=returns
    )


def _utility(name: str, build: Callable[P, _Call]) -> Callable[P, tuple[Any, str]]:
    """The sync utility helper `name` from `build`: (response, error) as ansible-runner gives
    them: a non-zero exit of the tool is no exception (see responses.utility_response);
    containerrunner's own errors still raise."""

    def helper(*args: P.args, **kwargs: P.kwargs) -> tuple[Any, str]:
        observe(name, build, args, kwargs)
        call = build(*args, **kwargs)
        out, err, rc = _run_foreground(call.argv, call.options, call.helper)
        return responses.utility_response(
            out, err, rc, call.response_format, plugin_files=call.plugin_files
        )

    _named(helper, build, name, build.__doc__ or "")
    return helper


def _async_twin(name: str, build: Callable[P, _Call]) -> Callable[P, AsyncResult]:
    """The `_async` twin of the helper `build` makes: same parameters, returns at once."""

    def helper(*args: P.args, **kwargs: P.kwargs) -> AsyncResult:
        observe(name, build, args, kwargs)
        call = build(*args, **kwargs)
        runner = _command_runner(call.argv, call.options, call.helper)
        return runner.start(), runner

    sync = name.removesuffix("_async")
    doc = (
        f"Like {sync}(), in a thread: returns (thread, runner) at once; the job's stdout and "
        "stderr are readable through runner.stdout / runner.stderr once the thread ended."
    )
    _named(helper, build, name, doc)
    return helper


# ---------------------------------------------------------------------- run / run_async
def run_runner(kwargs: dict[str, Any]) -> Runner:
    """The unstarted Runner for run()'s keyword arguments (validated here)."""
    config, handlers = RunnerConfig.from_run_kwargs(**kwargs)
    config.prepare()
    return Runner(config=config, **handlers)


def command_runner(
    executable_cmd: str, cmdline_args: Sequence[str] | None, options: dict[str, Any], helper: str
) -> Runner:
    """The unstarted Runner for run_command()'s arguments (validated here)."""
    return _command_runner(_command(executable_cmd, cmdline_args or []), options, helper)


def run(**kwargs: Any) -> Any:
    """Run a playbook, an ad-hoc module or a role; returns the finished Runner.

    With `streamer="transmit" | "worker" | "process"` (and `_output=` / `_input=`), one phase
    of the job stream instead, as ansible-runner does (containerrunner.streaming.streamer)."""
    observe("run", None, (), kwargs)
    if kwargs.get("streamer") is not None:
        from containerrunner.streaming.streamer import run_streamer

        return run_streamer(kwargs)
    runner = run_runner(kwargs)
    runner.run()
    return runner


def run_async(**kwargs: Any) -> AsyncResult:
    """Like run(), in a thread; returns (thread, runner) at once."""
    observe("run_async", None, (), kwargs)
    runner = run_runner(kwargs)
    return runner.start(), runner


# ---------------------------------------------------------------------- run_command
def _run_command(
    executable_cmd: str, cmdline_args: Sequence[str] | None = None, **options: Any
) -> _Call:
    return _Call(_command(executable_cmd, cmdline_args or []), options, "run_command")


def run_command(
    executable_cmd: str, cmdline_args: Sequence[str] | None = None, **options: Any
) -> tuple[str, str, int]:
    """Run any command (locally or in the EE); returns (stdout, stderr, rc).

    Interactive when `input_fd`/`output_fd`/`error_fd` are given (`runner_mode='subprocess'`);
    with `passwords` (regex -> answer) the command runs under a pty and prompts are answered.
    """
    observe("run_command", _run_command, (executable_cmd, cmdline_args), options)
    call = _run_command(executable_cmd, cmdline_args, **options)
    return _run_foreground(call.argv, call.options, call.helper)


run_command_async = _async_twin("run_command_async", _run_command)


# ---------------------------------------------------------------------- ansible utilities
def _plugin_docs(
    plugin_names: Sequence[str],
    plugin_type: str | None = None,
    response_format: str | None = None,
    snippet: bool = False,
    playbook_dir: str | None = None,
    module_path: str | None = None,
    **options: Any,
) -> _Call:
    """`ansible-doc` for `plugin_names`: (docs, stderr); docs is a dict for 'json'."""
    argv = commands.plugin_docs_argv(
        plugin_names, plugin_type, response_format, snippet, playbook_dir, module_path
    )
    return _Call(argv, options, "get_plugin_docs", response_format)


def _plugin_list(
    list_files: bool = False,
    response_format: str | None = None,
    plugin_type: str | None = None,
    playbook_dir: str | None = None,
    module_path: str | None = None,
    **options: Any,
) -> _Call:
    """`ansible-doc -l` (or `-F` with list_files): (list, stderr); with list_files and 'json',
    a {plugin: path} mapping read from the text listing (`-F -j` fails in ansible-core)."""
    argv = commands.plugin_list_argv(
        list_files, response_format, plugin_type, playbook_dir, module_path
    )
    as_text = commands.lists_files_as_text(list_files, response_format, plugin_type)
    return _Call(argv, options, "get_plugin_list", response_format, plugin_files=as_text)


def _inventory(
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
) -> _Call:
    """`ansible-inventory --list|--host|--graph`: (inventory, stderr); a dict for 'json', else
    text (the graph is always text)."""
    argv = commands.inventory_argv(
        action, inventories, response_format, host, playbook_dir, vault_ids,
        vault_password_file, output_file, export,
    )  # fmt: skip
    fmt = response_format if action != "graph" else None
    return _Call(argv, options, "get_inventory", fmt)


def _ansible_config(
    action: str, config_file: str | None = None, only_changed: bool | None = None, **options: Any
) -> _Call:
    """`ansible-config list|dump|view`: (text, stderr)."""
    return _Call(
        commands.config_argv(action, config_file, only_changed), options, "get_ansible_config"
    )


def _role_list(
    collection: str | None = None, playbook_dir: str | None = None, **options: Any
) -> _Call:
    """Roles with an argument spec (`ansible-doc -t role -l -j`): (dict, stderr)."""
    argv = commands.role_list_argv(collection, playbook_dir)
    return _Call(argv, options, "get_role_list", "json")


def _role_argspec(
    role: str, collection: str | None = None, playbook_dir: str | None = None, **options: Any
) -> _Call:
    """A role's argument spec (`ansible-doc -t role -j`): (dict, stderr)."""
    argv = commands.role_argspec_argv(role, collection, playbook_dir)
    return _Call(argv, options, "get_role_argspec", "json")


get_plugin_docs = _utility("get_plugin_docs", _plugin_docs)
get_plugin_docs_async = _async_twin("get_plugin_docs_async", _plugin_docs)
get_plugin_list = _utility("get_plugin_list", _plugin_list)
get_plugin_list_async = _async_twin("get_plugin_list_async", _plugin_list)
get_inventory = _utility("get_inventory", _inventory)
get_inventory_async = _async_twin("get_inventory_async", _inventory)
get_ansible_config = _utility("get_ansible_config", _ansible_config)
get_ansible_config_async = _async_twin("get_ansible_config_async", _ansible_config)
get_role_list = _utility("get_role_list", _role_list)
get_role_list_async = _async_twin("get_role_list_async", _role_list)
get_role_argspec = _utility("get_role_argspec", _role_argspec)
get_role_argspec_async = _async_twin("get_role_argspec_async", _role_argspec)
