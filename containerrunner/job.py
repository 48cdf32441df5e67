"""`Job`: one fully resolved, immutable unit of work for the Runner.

Every helper ends here: `run()` through RunnerConfig.prepare(), `run_command()` and the Ansible
utility helpers directly. The Runner executes a Job and does not look at helper arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from containerrunner.config.execution import ExecutionOptions
from containerrunner.isolation.types import Mount

RunnerMode = Literal["pexpect", "subprocess"]


@dataclass(frozen=True)
class JobFile:
    """A file the Runner writes into the job's private runtime dir before starting."""

    name: str
    content: str


@dataclass(frozen=True)
class Job:
    """What to run and how.

    Nothing of it exists on disk yet: `runtime_dir` (and `temporary_dir`, when the caller gave
    no private data dir) are fresh paths the Runner makes when the job starts and removes when
    it ends (see `tempdirs` and `workspace`).
    """

    command: tuple[str, ...]
    execution: ExecutionOptions
    ident: str
    artifact_base: str
    runtime_dir: str
    env: Mapping[str, str] = field(default_factory=dict)
    temporary_dir: str | None = None  # made at start, holds artifact_base; removed at the end
    private_data_dir: str | None = None  # the caller's (None: none given, or temporary)
    files: tuple[JobFile, ...] = ()
    extra_mounts: tuple[Mount, ...] = ()
    mode: RunnerMode = "subprocess"
    passwords: Mapping[str, str] = field(default_factory=dict)
    events: bool = False
    ssh_key: str | None = None
    input_fd: Any = None
    output_fd: IO[str] | Any = None
    error_fd: IO[str] | Any = None
    suppress_output_file: bool = False
    quiet: bool = True  # False: echo the output on sys.stdout (ansible-runner's default)
    json_mode: bool = False  # stdout (file and echo) has each event as a JSON line
    cancel_poll: float | None = None  # seconds between cancel_callback calls; None: default
    rotate_artifacts: int = 0
    omit_event_data: bool = False
    only_failed_event_data: bool = False
    fact_cache: str | None = None  # the jsonfile cache's dir in artifacts/<ident>/, or None
    kind: str = "command"
