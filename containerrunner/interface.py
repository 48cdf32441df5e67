"""The public helpers: thin, each builds a Job (or a RunnerConfig) and runs it.

Every helper takes the execution options (`process_isolation`, `process_isolation_executable`,
`container_image`, `container_options`, `container_volume_mounts`, `container_workdir`,
`host_cwd`, `envvars`, `timeout`, ...) as keyword arguments; an option a helper does not know
raises ConfigurationError naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from containerrunner import commands
from containerrunner.artifacts import check_ident
from containerrunner.config.execution import EXECUTION_KWARGS, ExecutionOptions, as_str_tuple
from containerrunner.errors import CommandError, ConfigurationError, OutputParseError
from containerrunner.job import Job, RunnerMode
from containerrunner.runner import Runner
from containerrunner.runner_config import RunnerConfig

# Options every command-style helper accepts, besides its own parameters.
EXECUTION_OPTIONS = frozenset({*EXECUTION_KWARGS, "envvars"})
HANDLERS = frozenset(
    {"event_handler", "status_handler", "cancel_callback", "finished_callback", "artifacts_handler"}
)
COMMAND_OPTIONS = (
    EXECUTION_OPTIONS
    | HANDLERS
    | {
        "private_data_dir",
        "artifact_dir",
        "ident",
        "passwords",
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


class CommandRunnerConfig:
    """The `config` of a Runner started by run_command and the utility helpers."""

    def __init__(self, job: Job, temporary_dir: str | None) -> None:
        self.job = job
        self.temporary_dir = temporary_dir
        self.ident = job.ident
        self.command = list(job.command)

    @property
    def private_data_dir(self) -> str | None:
        return None if self.temporary_dir else os.path.dirname(self.job.artifact_base)


def _check_options(options: dict[str, Any], allowed: frozenset[str], helper: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigurationError(
            f"{helper}() got unknown option(s): {', '.join(unknown)}; "
            f"it accepts: {', '.join(sorted(allowed))}"
        )


def _handlers(options: dict[str, Any]) -> dict[str, Any]:
    handlers = {name: options.get(name) for name in HANDLERS}
    for name, fn in handlers.items():
        if fn is not None and not callable(fn):
            raise ConfigurationError(f"{name} must be callable, not {fn!r}")
    return handlers


def _command_runner(command: Sequence[str], options: dict[str, Any], helper: str) -> Runner:
    """A Runner for `command` (its Runner removes the job's runtime dir when it ends)."""
    _check_options(options, COMMAND_OPTIONS, helper)
    execution = ExecutionOptions.from_kwargs(
        **{k: v for k, v in options.items() if k in EXECUTION_OPTIONS}
    )
    passwords = options.get("passwords") or {}
    if not isinstance(passwords, dict):
        raise ConfigurationError(f"passwords must be a mapping of regex: answer, not {passwords!r}")
    input_fd = options.get("input_fd")
    mode: RunnerMode
    requested = options.get("runner_mode") or ("pexpect" if passwords else "subprocess")
    if requested == "pexpect":
        mode = "pexpect"
    elif requested == "subprocess":
        mode = "subprocess"
    else:
        raise ConfigurationError(
            f"runner_mode must be 'pexpect' or 'subprocess', not {requested!r}"
        )
    if mode == "pexpect" and input_fd is not None:
        raise ConfigurationError(
            "input_fd works with runner_mode='subprocess' only (pexpect answers prompts "
            "from passwords)"
        )
    given_ident = options.get("ident")
    ident = str(uuid.uuid4()) if given_ident is None else check_ident(given_ident)
    private_data_dir = options.get("private_data_dir")
    temporary: str | None = None
    if private_data_dir is None:
        temporary = tempfile.mkdtemp(prefix="containerrunner-")
        private_data_dir = temporary
    elif not os.path.isdir(private_data_dir):
        raise ConfigurationError(f"private_data_dir {private_data_dir!r} is not a directory")
    artifact_base = options.get("artifact_dir") or os.path.join(private_data_dir, "artifacts")
    runtime_dir = tempfile.mkdtemp(prefix=f"containerrunner-{ident[:8]}-")
    job = Job(
        command=tuple(command),
        execution=execution,
        ident=ident,
        artifact_base=os.path.abspath(artifact_base),
        runtime_dir=runtime_dir,
        mode=mode,
        passwords=passwords,
        input_fd=input_fd,
        output_fd=options.get("output_fd"),
        error_fd=options.get("error_fd"),
        suppress_output_file=bool(options.get("suppress_output_file", False)),
        rotate_artifacts=int(options.get("rotate_artifacts") or 0),
        kind=helper,
    )
    return Runner(CommandRunnerConfig(job, temporary), **_handlers(options))


def _run_foreground(
    command: Sequence[str], options: dict[str, Any], helper: str
) -> tuple[str, str, int]:
    """Run to the end and return (stdout, stderr, rc); a temporary private data dir made for
    the call (none was given) is removed afterwards, the outputs having been read."""
    runner = _command_runner(command, options, helper)
    try:
        runner.run()
        with runner.stdout as out, runner.stderr as err:
            return out.read(), err.read(), runner.rc if runner.rc is not None else -1
    finally:
        temporary = runner.config.temporary_dir
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def _run_background(
    command: Sequence[str], options: dict[str, Any], helper: str
) -> tuple[threading.Thread, Runner]:
    """Start in a thread; the caller reads runner.stdout/stderr, so the artifacts stay."""
    runner = _command_runner(command, options, helper)
    thread = threading.Thread(
        target=runner.run, name=f"containerrunner-{runner.job.ident}", daemon=True
    )
    thread.start()
    return thread, runner


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
    thread = threading.Thread(
        target=runner.run, name=f"containerrunner-{config.ident}", daemon=True
    )
    thread.start()
    return thread, runner


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
    argv: Sequence[str], options: dict[str, Any], helper: str, response_format: str | None
) -> tuple[Any, str]:
    out, err, rc = _run_foreground(argv, options, helper)
    if rc != 0:
        raise CommandError(argv, rc, err[-2000:] or out[-2000:])
    return parse_response(out, response_format), err


def parse_response(out: str, response_format: str | None) -> Any:
    """`out` as a dict for response_format='json', else the text."""
    if response_format != "json":
        return out
    text = out.strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OutputParseError(f"output is not valid JSON ({exc})", out) from exc


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
    """`ansible-doc -l` (or `-F` with list_files): (list, stderr)."""
    argv = commands.plugin_list_argv(
        list_files, response_format, plugin_type, playbook_dir, module_path
    )
    return _utility(argv, options, "get_plugin_list", response_format)


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
    """`ansible-inventory --list|--host|--graph`: (inventory, stderr)."""
    argv = commands.inventory_argv(
        action, inventories, response_format, host, playbook_dir, vault_ids,
        vault_password_file, output_file, export,
    )  # fmt: skip
    fmt = response_format if action != "graph" else None
    if action != "graph" and response_format is None:
        fmt = "json"
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
