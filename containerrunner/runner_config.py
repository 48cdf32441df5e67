"""`RunnerConfig`: ansible-runner's composition API for run().

    rc = RunnerConfig(private_data_dir="demo", playbook="site.yml", tags="web")
    rc.prepare()
    Runner(config=rc).run()

The constructor validates everything (RunSpec.from_kwargs) and raises ConfigurationError on bad
input before anything is written; prepare() turns the spec into the Job the Runner executes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from containerrunner.config.run import RunSpec
from containerrunner.job import Job
from containerrunner.jobs import build_run_job

MASK = "********"


class JobAttributes:
    """The attributes ansible-runner's configs have that callers read after a run, derived
    from the Job: `command`, `cwd`, `env` (the process environment, secrets masked),
    `artifact_dir`, `ident`, `private_data_dir`, `container_image`, `process_isolation`."""

    job: Job | None

    def _job(self) -> Job:
        if self.job is None:
            raise RuntimeError("the RunnerConfig was not prepared: call config.prepare() first")
        return self.job

    @property
    def ident(self) -> str:
        return self._job().ident

    @property
    def command(self) -> list[str]:
        return list(self.job.command) if self.job is not None else []

    @property
    def cwd(self) -> str:
        return self._job().execution.cwd

    @property
    def artifact_dir(self) -> str | None:
        """This job's artifacts dir, `<artifact base>/<ident>`."""
        job = self._job()
        return os.path.join(job.artifact_base, job.ident)

    @property
    def private_data_dir(self) -> str | None:
        return self._job().private_data_dir

    @property
    def process_isolation(self) -> bool:
        return self._job().execution.process_isolation

    @property
    def container_image(self) -> str:
        """The EE image; '' on the host (as ansible-runner)."""
        execution = self._job().execution
        return execution.container_image if execution.process_isolation else ""

    @property
    def env(self) -> dict[str, str]:
        """The environment the job's process gets, with the values of secret_envvars masked."""
        execution = self._job().execution
        env = {**os.environ, **execution.envvars, **self._job().env}
        return {k: MASK if k in execution.secret_env_names else v for k, v in env.items()}


class CommandRunnerConfig(JobAttributes):
    """The `config` of a Runner started by run_command and the utility helpers."""

    def __init__(self, job: Job) -> None:
        self.job = job


class RunnerConfig(JobAttributes):
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
        """This run's artifacts dir, `<artifact base>/<ident>` (known before prepare() when
        a private data dir or artifact_dir was given)."""
        if self.job is not None:
            return super().artifact_dir
        return self.spec.job_artifact_dir

    def prepare(self) -> None:
        """Resolve the spec into a Job; nothing is made on disk until the Runner starts it."""
        if self.job is None:
            self.job = build_run_job(self.spec)
