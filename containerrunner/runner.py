"""`Runner`: runs one Job and holds what happened.

Lifecycle: unstarted -> starting -> running -> successful | failed | canceled | timeout.
The Runner writes the job's artifacts, wires the event stream from the callback plugin to the
`event_handler`, and always cleans up (container, ssh-agent, runtime dir) in `finally`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from containerrunner.artifacts import ArtifactDir, rotate, write_text_atomic
from containerrunner.errors import ConfigurationError
from containerrunner.events import EventStream, load_events, stats_from_events
from containerrunner.isolation.containerize import containerize
from containerrunner.isolation.engine import Engine, detect_engine
from containerrunner.isolation.images import engine_version, ensure_image, image_digest
from containerrunner.isolation.types import Invocation, Mount
from containerrunner.job import Job
from containerrunner.process import ProcessControls, ProcessResult, run_process
from containerrunner.sshagent import SshAgent
from containerrunner.version import __version__

CALLBACK_DIR = str(Path(__file__).resolve().parent / "callback")
FINAL_STATUSES = ("successful", "failed", "canceled", "timeout")

EventHandler = Callable[[dict[str, Any]], Any]
StatusHandler = Callable[[dict[str, Any], Any], Any]


class Runner:
    """Runs a prepared job; see the module docstring for the lifecycle."""

    def __init__(
        self,
        config: Any,
        event_handler: EventHandler | None = None,
        status_handler: StatusHandler | None = None,
        cancel_callback: Callable[[], bool] | None = None,
        finished_callback: Callable[[Runner], Any] | None = None,
        artifacts_handler: Callable[[str], Any] | None = None,
    ) -> None:
        self.config = config
        self.event_handler = event_handler
        self.status_handler = status_handler
        self.cancel_callback = cancel_callback
        self.finished_callback = finished_callback
        self.artifacts_handler = artifacts_handler
        self.status = "unstarted"
        self.rc: int | None = None
        self.reason = ""
        self.errored = False
        self._cancel = threading.Event()
        self._changed = threading.Condition()
        self._last_counter = 0
        self._finished = False
        self._stats: dict[str, Any] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def job(self) -> Job:
        job = getattr(self.config, "job", None)
        if job is None:
            raise RuntimeError("the RunnerConfig was not prepared: call config.prepare() first")
        assert isinstance(job, Job)
        return job

    @property
    def artifact_dir(self) -> str:
        return str(ArtifactDir(self.job.artifact_base, self.job.ident).path)

    @property
    def stdout(self) -> IO[str]:
        """An open handle on the job's stdout artifact."""
        return open(Path(self.artifact_dir) / "stdout", encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> IO[str]:
        """An open handle on the job's stderr artifact (empty in pexpect mode: merged)."""
        return open(Path(self.artifact_dir) / "stderr", encoding="utf-8", errors="replace")

    @property
    def events(self) -> Iterator[dict[str, Any]]:
        """Events in counter order; while the job runs, waits for new ones (no polling)."""
        seen = 0
        while True:
            with self._changed:
                while self._last_counter <= seen and not self._finished:
                    self._changed.wait()
                finished = self._finished
            for event in load_events(self.artifact_dir):
                counter = int(event.get("counter", 0))
                if counter > seen:
                    seen = counter
                    yield event
            if finished:
                return

    @property
    def stats(self) -> dict[str, Any] | None:
        """The final playbook_on_stats data (ok/changed/failures/dark/... per host)."""
        if self._stats is None and self._finished:
            self._stats = stats_from_events(load_events(self.artifact_dir))
        return self._stats

    def host_events(self, host: str) -> Iterator[dict[str, Any]]:
        """The events whose event_data names `host`."""
        for event in load_events(self.artifact_dir):
            if event.get("event_data", {}).get("host") == host:
                yield event

    def get_fact_cache(self, host: str) -> dict[str, Any]:
        return ArtifactDir(self.job.artifact_base, self.job.ident).get_fact_cache(host)

    def set_fact_cache(self, host: str, data: dict[str, Any]) -> None:
        ArtifactDir(self.job.artifact_base, self.job.ident).set_fact_cache(host, data)

    def cancel(self) -> None:
        """Ask the running job to stop; its status becomes `canceled`."""
        self._cancel.set()

    # ------------------------------------------------------------------ lifecycle
    def _set_status(self, status: str) -> None:
        self.status = status
        if self.status_handler is not None:
            self.status_handler({"status": status, "runner_ident": self.job.ident}, self.config)

    def _on_event(self, event: dict[str, Any]) -> None:
        keep = True
        if self.event_handler is not None:
            keep = self.event_handler(event) is not False
        counter = int(event.get("counter", 0))
        if not keep:
            name = f"{counter}-{event.get('uuid', '')}.json"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(Path(self.artifact_dir) / "job_events" / name)
        if event.get("event") == "playbook_on_stats":
            self._stats = stats_from_events([event])
        with self._changed:
            self._last_counter = max(self._last_counter, counter)
            self._changed.notify_all()

    def run(self) -> tuple[str, int | None]:
        """Run the job to the end; returns (status, rc)."""
        job = self.job
        artifacts = ArtifactDir(job.artifact_base, job.ident)
        self._set_status("starting")
        engine: Engine | None = None
        try:
            if job.execution.process_isolation:
                engine = detect_engine(job.execution.engine)
                ensure_image(engine, job.execution.container_image, job.execution.pull)
            artifacts.create()
        except BaseException:
            self._abort_before_start(job)
            raise
        if job.rotate_artifacts:
            rotate(job.artifact_base, job.rotate_artifacts, protect=job.ident)
        stream: EventStream | None = None
        agent: SshAgent | None = None
        out_fh = err_fh = None
        try:
            env = {**job.execution.envvars, **job.env}
            mounts: list[Mount] = list(job.extra_mounts)
            if job.runtime_dir is not None:
                os.makedirs(job.runtime_dir, mode=0o700, exist_ok=True)
                for f in job.files:
                    write_text_atomic(os.path.join(job.runtime_dir, f.name), f.content, 0o600)
                mounts.append(Mount.same_path(job.runtime_dir))
            if job.events:
                env.update(self._event_env(job, artifacts))
                mounts.append(Mount.same_path(CALLBACK_DIR, read_only=True))
                mounts.append(Mount.same_path(str(artifacts.path)))
                if job.runtime_dir is not None:
                    fifo = os.path.join(job.runtime_dir, "events.fifo")
                    env["CONTAINERRUNNER_EVENT_FIFO"] = fifo
                    stream = EventStream(fifo)
                    stream.start(self._on_event)
            if job.ssh_key and job.runtime_dir is not None:
                agent = SshAgent.start(os.path.join(job.runtime_dir, "agent.sock"), job.ssh_key)
                env["SSH_AUTH_SOCK"] = agent.socket
            interactive = job.input_fd is not None
            tty = job.mode == "pexpect" or (interactive and _isatty(job.input_fd))
            command = job.command if engine is not None else resolve_local(job.command, env)
            # ensure_image() above already applied the pull policy: don't pull twice.
            inv = containerize(
                command,
                options=dataclasses.replace(job.execution, pull="never"),
                ident=job.ident,
                env=env,
                extra_mounts=mounts,
                tty=tty,
                interactive=interactive or job.mode == "pexpect",
                engine=engine,
            )
            artifacts.write_command(job.command, inv.cwd, env.keys())
            self._write_provenance(artifacts, inv, engine)
            out_fh = open(artifacts.stdout_path, "w", encoding="utf-8")  # noqa: SIM115
            err_fh = open(artifacts.stderr_path, "w", encoding="utf-8")  # noqa: SIM115
            controls = ProcessControls(
                mode=job.mode,
                passwords=job.passwords,
                job_timeout=job.execution.job_timeout,
                idle_timeout=job.execution.idle_timeout,
                cancel_callback=self.cancel_callback,
                cancel_event=self._cancel,
                stdin=job.input_fd,
                stdout=_tee(out_fh, job.output_fd, job.suppress_output_file),
                stderr=_tee(err_fh, job.error_fd, job.suppress_output_file),
                on_start=lambda pid: self._set_status("running"),
            )
            result: ProcessResult | None = None
            try:
                result = run_process(inv, controls)
            finally:
                if stream is not None:
                    stream.close()
                    stream = None
            self.rc = result.rc
            self.reason = result.reason
            self.status = result.outcome
        except BaseException:
            self.errored = True
            if self.status not in FINAL_STATUSES:
                self.status = "failed"
            raise
        finally:
            if stream is not None:
                stream.close()
            if agent is not None:
                agent.stop()
            for fh in (out_fh, err_fh):
                if fh is not None:
                    fh.close()
            if job.runtime_dir is not None:
                shutil.rmtree(job.runtime_dir, ignore_errors=True)
            artifacts.write_result(self.status, self.rc)
            with self._changed:
                self._finished = True
                self._changed.notify_all()
        self._set_status(self.status)
        if self.finished_callback is not None:
            self.finished_callback(self)
        if self.artifacts_handler is not None:
            self.artifacts_handler(str(artifacts.path))
        return self.status, self.rc

    def _abort_before_start(self, job: Job) -> None:
        """The job could not start (no engine or image, ident taken): nothing ran.

        Writes no artifact (the directory may be an earlier job's), removes the runtime dir,
        and ends the lifecycle as `failed` so waiting `events` readers return.
        """
        self.errored = True
        self.status = "failed"
        if job.runtime_dir is not None:
            shutil.rmtree(job.runtime_dir, ignore_errors=True)
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    @staticmethod
    def _event_env(job: Job, artifacts: ArtifactDir) -> dict[str, str]:
        env = {
            "ANSIBLE_STDOUT_CALLBACK": "containerrunner",
            "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR,
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "CONTAINERRUNNER_ARTIFACT_DIR": str(artifacts.path),
            "CONTAINERRUNNER_IDENT": job.ident,
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
        }
        if job.omit_event_data:
            env["CONTAINERRUNNER_OMIT_EVENT_DATA"] = "1"
        if job.only_failed_event_data:
            env["CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA"] = "1"
        if job.fact_cache:
            env["ANSIBLE_CACHE_PLUGIN"] = "jsonfile"
            env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(artifacts.fact_cache)
        return env

    def _write_provenance(
        self, artifacts: ArtifactDir, inv: Invocation, engine: Engine | None
    ) -> None:
        record: dict[str, Any] = {
            "containerrunner": __version__,
            "ident": self.job.ident,
            "command": list(self.job.command),
            "argv": list(inv.argv),
            "cwd": inv.cwd,
            "process_isolation": engine is not None,
        }
        if engine is not None:
            image = self.job.execution.container_image
            record.update(
                engine=engine.name,
                engine_executable=engine.executable,
                engine_version=engine_version(engine),
                image=image,
                image_id=image_digest(engine, image),
                container_name=inv.container_name,
            )
        artifacts.write_provenance(record)


def resolve_local(command: tuple[str, ...], env: dict[str, str]) -> tuple[str, ...]:
    """The command with its program found on PATH, or beside this Python (a venv's bin/).

    Raises ConfigurationError naming the program when it is nowhere: on the host the Ansible
    tools come from an ansible-core installation (or use process_isolation=True).
    """
    program = command[0]
    if os.sep in program:
        return command
    path = env.get("PATH", os.environ.get("PATH", os.defpath))
    found = shutil.which(program, path=path) or shutil.which(
        program, path=os.path.dirname(sys.executable)
    )
    if found is None:
        hint = (
            "install ansible-core on this host, or run in the EE with process_isolation=True"
            if program.startswith("ansible")
            else "check the command name"
        )
        raise ConfigurationError(f"cannot run {program!r}: not found on PATH ({hint})")
    return (found, *command[1:])


def _isatty(fd: Any) -> bool:
    try:
        return os.isatty(fd if isinstance(fd, int) else fd.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _tee(fh: IO[str], extra: Any, suppress_file: bool) -> Callable[[str], None]:
    """A sink writing to the artifact file (unless suppressed) and to the caller's stream."""

    def sink(text: str) -> None:
        if not suppress_file:
            fh.write(text)
            fh.flush()
        if extra is not None:
            if isinstance(extra, int):
                os.write(extra, text.encode("utf-8", "replace"))
            else:
                extra.write(text)
                extra.flush()

    return sink
