"""The job builder: one place where a validated request becomes the Job the Runner runs.

`build_run_job` for `run()` (a RunSpec: playbook, ad-hoc module or role) and
`build_command_job` for `run_command` and the Ansible utility helpers. Both read the private
data dir through `inputs.py` and merge it under the keyword arguments the same way (explicit
wins), choose the artifact location the same way, and make nothing on disk: the Job names
fresh paths that the Runner makes when the job starts (see `tempdirs`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from containerrunner import commands
from containerrunner.config.run import (
    RunSpec,
    check_rotate,
    execution_options,
    merged_passwords,
    merged_settings,
    merged_ssh_key,
)
from containerrunner.errors import ConfigurationError
from containerrunner.inputs import read_private_data_dir
from containerrunner.job import Job, JobFile, RunnerMode
from containerrunner.process.controls import compile_prompts
from containerrunner.tempdirs import runtime_dir_path, temporary_data_dir_path
from containerrunner.validate import given_flag, job_ident

#: the Ansible programs whose callbacks produce events (ansible-runner's event stream)
EVENT_PROGRAMS = ("ansible", "ansible-playbook")


def artifact_location(
    private_data_dir: str | None, artifact_dir: str | None, parent: str | None = None
) -> tuple[str, str | None]:
    """(artifact base, temporary dir or None).

    `artifact_dir`, else `<private_data_dir>/artifacts`, else `<a temporary private data
    dir>/artifacts` (made when the job starts, removed when it ends; under `parent`, a warm
    session's runtime dir, when given).
    """
    if artifact_dir:
        return os.path.abspath(artifact_dir), None
    if private_data_dir:
        return os.path.join(os.path.abspath(private_data_dir), "artifacts"), None
    temporary = temporary_data_dir_path(parent)
    return os.path.join(temporary, "artifacts"), temporary


def build_command_job(command: Sequence[str], options: Mapping[str, Any], helper: str) -> Job:
    """The Job for `run_command` and the utility helpers (options already name-checked)."""
    given = {name: value for name, value in options.items() if value is not None}
    pdd = given.get("private_data_dir")
    if pdd is not None and (not isinstance(pdd, str | os.PathLike) or not os.path.isdir(pdd)):
        raise ConfigurationError(f"private_data_dir {pdd!r} is not a directory")
    private = read_private_data_dir(os.fspath(pdd)) if pdd is not None else None
    settings = merged_settings(given, private)
    execution = execution_options(given, private, settings)
    passwords = merged_passwords(given, private)
    ident = job_ident(given.get("ident"))
    parent = execution.session.runtime_dir if execution.session else None
    artifact_base, temporary = artifact_location(
        private.path if private else None, given.get("artifact_dir"), parent
    )
    input_fd = given.get("input_fd")
    mode = _runner_mode(given.get("runner_mode"), passwords, input_fd)
    ssh_key = merged_ssh_key(given, private)
    suppress = given_flag(given, "suppress_output_file", settings.suppress_output_file)
    return checked_transport(
        Job(
            command=tuple(command),
            execution=execution,
            ident=ident,
            artifact_base=artifact_base,
            runtime_dir=runtime_dir_path(ident, parent),
            temporary_dir=temporary,
            private_data_dir=private.path if private else None,
            mode=mode,
            passwords=passwords,
            events=os.path.basename(command[0]) in EVENT_PROGRAMS,
            ssh_key=ssh_key,
            input_fd=input_fd,
            output_fd=given.get("output_fd"),
            error_fd=given.get("error_fd"),
            suppress_output_file=suppress,
            quiet=given_flag(given, "quiet", settings.suppress_ansible_output),
            json_mode=given_flag(given, "json_mode", False),
            cancel_poll=settings.pexpect_timeout,
            rotate_artifacts=check_rotate(given.get("rotate_artifacts")),
            kind=helper,
        )
    )


def _runner_mode(requested: Any, passwords: Mapping[str, str], input_fd: Any) -> RunnerMode:
    """pexpect (a pty; prompts answered from passwords) or subprocess (pipes, stdin given)."""
    mode = requested or ("pexpect" if passwords and input_fd is None else "subprocess")
    if mode not in ("pexpect", "subprocess"):
        raise ConfigurationError(f"runner_mode must be 'pexpect' or 'subprocess', not {mode!r}")
    if mode == "pexpect" and input_fd is not None:
        raise ConfigurationError(
            "input_fd works with runner_mode='subprocess' only (pexpect answers prompts "
            "from passwords)"
        )
    return "pexpect" if mode == "pexpect" else "subprocess"


def build_run_job(spec: RunSpec) -> Job:
    """The Job for a run() request: argv, env, generated input files, execution options."""
    parent = spec.execution.session.runtime_dir if spec.execution.session else None
    runtime_dir = runtime_dir_path(spec.ident, parent)
    files: list[JobFile] = []

    def generated(name: str, content: str) -> str:
        files.append(JobFile(name, content))
        return os.path.join(runtime_dir, name)

    inventories = list(spec.inventory)
    inventory = spec.inventory_file()
    if inventory is not None:
        inventories.append(generated(*inventory))
    extravars_file = (
        generated("extravars.json", json.dumps(dict(spec.extravars))) if spec.extravars else None
    )
    common: dict[str, Any] = {
        "inventories": inventories,
        "extravars_file": extravars_file,
        "limit": spec.limit,
        "forks": spec.forks,
        "verbosity": spec.verbosity,
        "cmdline": spec.cmdline,
        "binary": spec.binary,
    }
    if spec.kind == "adhoc":
        assert spec.module is not None and spec.host_pattern is not None
        command = commands.adhoc_argv(
            spec.module, spec.host_pattern, module_args=spec.module_args, **common
        )
    else:
        plays = spec.inline_plays()
        playbook = generated("playbook.json", json.dumps(plays)) if plays else spec.playbook
        assert playbook is not None
        command = commands.playbook_argv(
            playbook, tags=spec.tags, skip_tags=spec.skip_tags, **common
        )

    env: dict[str, str] = {}  # the Runner adds execution.envvars
    if spec.ansible_roles_path:
        env["ANSIBLE_ROLES_PATH"] = spec.ansible_roles_path
    execution = spec.execution
    if execution.host_cwd is None:
        # ansible-runner runs Ansible in project/ (relative paths in plays resolve there).
        cwd = spec.project_dir if spec.project_dir and os.path.isdir(spec.project_dir) else None
        cwd = cwd or spec.private_data_dir
        if cwd:
            execution = dataclasses.replace(execution, host_cwd=os.path.abspath(cwd))
    artifact_base, temporary_dir = artifact_location(
        spec.private_data_dir, spec.artifact_dir, parent
    )
    return checked_transport(
        Job(
            temporary_dir=temporary_dir,
            private_data_dir=spec.private_data_dir,
            command=tuple(command),
            execution=execution,
            ident=spec.ident,
            artifact_base=os.path.abspath(artifact_base),
            env=env,
            runtime_dir=runtime_dir,
            files=tuple(files),
            # ansible-runner's pexpect (one merged stream, prompts answered) unless subprocess is
            # asked for and no prompt needs answering
            mode="subprocess"
            if spec.runner_mode == "subprocess" and not spec.passwords
            else "pexpect",
            passwords=dict(spec.passwords),
            events=True,
            ssh_key=spec.ssh_key,
            suppress_output_file=spec.suppress_output_file,
            quiet=spec.quiet,
            json_mode=spec.json_mode,
            cancel_poll=spec.pexpect_timeout,
            rotate_artifacts=spec.rotate_artifacts,
            omit_event_data=spec.omit_event_data,
            only_failed_event_data=spec.only_failed_event_data,
            fact_cache=spec.fact_cache if spec.fact_cache_type == "jsonfile" else None,
            kind=spec.kind,
        )
    )


def checked_transport(job: Job) -> Job:
    """`job`, unless it needs what container_transport='stream' cannot carry (the caller's
    stdin; `passwords` or `ssh_key` through a scheduler adapter): ConfigurationError naming it.

    `passwords` and `ssh_key` travel in the relay's payload on a local or remote engine: the
    bootstrap answers the prompts on its own pty and loads the key into an ssh-agent in the
    container (relay.py)."""
    if not job.execution.process_isolation or job.execution.transport != "stream":
        return job
    if job.input_fd is not None:
        raise ConfigurationError(
            "container_transport='stream' cannot carry input_fd (the container's stdin is the "
            "job's payload): use the default transport (bind mounts)"
        )
    compile_prompts(job.passwords)  # a bad regex named here, not in the container
    if job.execution.scheduler != "local":
        refused = [
            name
            for name, given in (("passwords", bool(job.passwords)), ("ssh_key", bool(job.ssh_key)))
            if given
        ]
        if refused:
            raise ConfigurationError(
                f"scheduler={job.execution.scheduler!r} cannot carry {', '.join(refused)} yet: "
                "run the job on a local or remote engine (engine_url)"
            )
    return job
