"""`RunnerConfig`: ansible-runner's composition API for run().

    rc = RunnerConfig(private_data_dir="demo", playbook="site.yml", tags="web")
    rc.prepare()
    Runner(config=rc).run()

The constructor validates everything (RunSpec.from_kwargs) and raises ConfigurationError on bad
input before anything is written; prepare() turns the spec into the Job the Runner executes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any

from containerrunner import commands
from containerrunner.config.run import RunSpec
from containerrunner.job import Job, JobFile


class RunnerConfig:
    """The validated request of a run() call, and (after prepare()) its Job."""

    def __init__(self, private_data_dir: str | None = None, **kwargs: Any) -> None:
        self.spec = RunSpec.from_kwargs(private_data_dir=private_data_dir, **kwargs)
        self.job: Job | None = None

    @classmethod
    def from_run_kwargs(cls, **kwargs: Any) -> tuple[RunnerConfig, dict[str, Any]]:
        """A config plus the handler callables to give to Runner(...)."""
        config = cls(**kwargs)
        # Not dataclasses.asdict: it deep-copies, and handlers are often bound methods of
        # objects holding locks or open files.
        handlers = config.spec.handlers
        return config, {f.name: getattr(handlers, f.name) for f in dataclasses.fields(handlers)}

    @property
    def ident(self) -> str:
        return self.spec.ident

    @property
    def private_data_dir(self) -> str | None:
        return self.spec.private_data_dir

    @property
    def artifact_dir(self) -> str | None:
        """This run's artifacts dir, `<artifact base>/<ident>` (known after prepare())."""
        if self.job is not None:
            return os.path.join(self.job.artifact_base, self.job.ident)
        return self.spec.job_artifact_dir

    @property
    def command(self) -> list[str]:
        return list(self.job.command) if self.job is not None else []

    def prepare(self) -> None:
        """Resolve the spec into a Job; creates only the job's private runtime dir."""
        if self.job is None:
            self.job = build_job(self.spec)


def build_job(spec: RunSpec) -> Job:
    """The Job for a run() request: argv, env, generated input files, execution options."""
    runtime_dir = tempfile.mkdtemp(prefix=f"containerrunner-{spec.ident[:8]}-")
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
    artifact_base = spec.artifact_dir or (
        os.path.join(spec.private_data_dir, "artifacts")
        if spec.private_data_dir
        else tempfile.mkdtemp(prefix="containerrunner-artifacts-")
    )
    return Job(
        command=tuple(command),
        execution=execution,
        ident=spec.ident,
        artifact_base=os.path.abspath(artifact_base),
        env=env,
        runtime_dir=runtime_dir,
        files=tuple(files),
        mode="pexpect",
        passwords=dict(spec.passwords),
        events=True,
        ssh_key=spec.ssh_key,
        suppress_output_file=spec.suppress_output_file,
        rotate_artifacts=spec.rotate_artifacts,
        omit_event_data=spec.omit_event_data,
        only_failed_event_data=spec.only_failed_event_data,
        fact_cache=spec.fact_cache_type == "jsonfile",
        kind=spec.kind,
    )
