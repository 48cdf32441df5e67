"""`Runner`: runs one Job and holds what happened.

Lifecycle: unstarted -> starting -> running -> successful | failed | canceled | timeout.
`run()` is the lifecycle only: it claims the artifacts dir, opens the job's `Workspace`
(runtime dir, event FIFO, ssh-agent), hands the process to `process_runner` and ends the job
on every path: the workspace closed, the claim released, a temporary dir removed, readers of
`events` woken, `status_handler` told the final status and `finished_callback` called.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from containerrunner.artifacts import FACT_CACHE, ArtifactDir, rotate
from containerrunner.errors import ArtifactWriteError, ConfigurationError, EngineTimeoutError
from containerrunner.events import EventLog, stats_from_events, unlisted_event_files
from containerrunner.isolation.containerize import container_name, containerize
from containerrunner.isolation.engine import Engine, detect_engine, login_name
from containerrunner.isolation.images import (
    ENGINE_RUN_FAILED,
    QUERY_TIMEOUT,
    ImageQuery,
    engine_version,
    ensure_image,
    is_pinned,
    pin_matches,
    prefetch_engine_version,
    pull_progress_to,
    starts_at_once,
)
from containerrunner.isolation.mounts import ansible_input_files, runner_layout_mounts
from containerrunner.isolation.network import check_default_network
from containerrunner.isolation.types import Invocation, Mount, StreamSecrets
from containerrunner.job import Job
from containerrunner.joboutput import ANSIBLE_VERSION_KEY, STATS_KEY, JobOutput
from containerrunner.process import ProcessControls, ProcessResult, run_process
from containerrunner.process.controls import Sink, TimeoutNotice, start_timeout_reason
from containerrunner.process.steering import Steering, StopRequest
from containerrunner.progress import Progress, ProgressTracker, PullProgress
from containerrunner.results import Collector, Summary, write_summary
from containerrunner.tempdirs import (
    job_module_dirs,
    make_dir,
    remove_dir,
    stop_job_processes,
)
from containerrunner.validate import as_grace
from containerrunner.version import __version__
from containerrunner.workspace import PASSWD_FILE, Workspace

CALLBACK_DIR = str(Path(__file__).resolve().parent / "callback")
# ansible-runner's rc for a job it stopped (canceled, timed out)
STOPPED_RC = 254

EventHandler = Callable[[dict[str, Any]], Any]
StatusHandler = Callable[[dict[str, Any], Any], Any]
ProcessRunner = Callable[[Invocation, ProcessControls], ProcessResult]


#: the image a job's container runs: its ID (the query answered before the start), the query
#: still being answered alongside the start (the optimistic start), or None (on the host, in
#: a cluster)
JobImage = str | ImageQuery | None


def _job_engine(job: Job, at_once: bool = True) -> tuple[Engine | None, JobImage]:
    """The job's engine with its image present (pull policy applied) and the image's ID, or
    (None, None) on the host. A job on rootless podman's default network where that network
    cannot be made is refused here, before anything starts (`check_default_network`).

    Optimistic start: when the job may start at once (`at_once` and `_starts_at_once`), the
    image query is started in a thread (ImageQuery) and returned instead of the ID; the
    container starts with `--pull=never` meanwhile, and only when that start fails with the
    image not known present does the job do what is done here otherwise (Runner.run). On
    this machine the query is a CLI round trip of ~50 ms on podman, ~10 ms on docker, which
    now runs while the engine creates the container.

    With a start_timeout each engine call is bounded by it (EngineTimeoutError after it).
    """
    if not job.execution.process_isolation:
        return None, None
    if job.execution.session is not None:  # checked and started when the session started
        return job.execution.session.engine, job.execution.session.image_id
    if job.execution.scheduler != "local":  # the cluster's nodes pull the image
        from containerrunner.cluster.base import backend_for, owner_alive

        backend_for(job.execution.scheduler, job.execution.scheduler_options).reap(owner_alive)
        return detect_engine("docker"), None
    # no `version` probe before the image query: that query tells a dead engine itself
    engine = detect_engine(job.execution.engine, job.execution.engine_url, probe=False)
    prefetch_engine_version(engine)  # for the provenance, alongside the image query
    check_default_network(engine, job.execution.container_network, job.execution.container_options)
    if at_once and _starts_at_once(job):
        timeout = min(QUERY_TIMEOUT, job.execution.start_timeout or QUERY_TIMEOUT)
        return engine, ImageQuery(engine, job.execution.container_image, timeout)
    image_id = ensure_image(
        engine,
        job.execution.container_image,
        job.execution.pull,
        job.execution.start_timeout,
        auth=job.execution.container_auth,
        auth_dir=os.path.dirname(job.runtime_dir),
    )
    return engine, image_id


def _starts_at_once(job: Job) -> bool:
    """Whether the job's container may start before its image query answered: the pull
    policy pulls nothing for a present image (`images.starts_at_once`), and a failed first
    attempt can be undone unseen. It cannot, so the query stays before the start, with
    - prompts to answer (`passwords`, pexpect mode): the answers (secrets) would be written
      to whatever the first attempt printed; or the caller's stdin (`input_fd`, a terminal):
      what the first attempt read would be lost to the second. A pty without prompts is
      fine: its one merged stream is held like two pipes are;
    - the stream transport: its payload (key, answers) goes on the engine client's stdin;
    - an ident whose artifacts dir exists already, or `rotate_artifacts`: the attempt claims
      the dir (which empties it) and rotates before the image is known, while a job whose
      image is absent must leave an earlier job's artifacts as they were.
    """
    execution = job.execution
    return (
        starts_at_once(execution.pull, execution.container_image)
        and not job.passwords
        and job.input_fd is None
        and execution.transport == "mounts"
        and not job.rotate_artifacts
        and not os.path.lexists(os.path.join(job.artifact_base, job.ident))
    )


class _NotStarted(Exception):
    """An optimistic start failed while the image was not known present (see _StartGate):
    the job undoes the attempt and takes the path with the image query first; `error` is
    the query's own failure (EngineError: the engine does not answer), raised there."""

    def __init__(self, error: Exception | None) -> None:
        super().__init__("the container did not start")
        self.error = error


class _StartGate:
    """The output of a container started before its image query answered (the optimistic
    start). It is held until the query says the image is present (`decide`, called from
    on_start, right after the spawn, so in practice before the container prints anything),
    then passes through: a first attempt that fails because the image is absent (or the
    engine does not answer) puts none of the engine's message in the job's stdout/stderr,
    the caller's output_fd or the artifacts. Used in the job's thread only."""

    def __init__(self, query: ImageQuery, stdout: Sink, stderr: Sink) -> None:
        self._query = query
        self._sinks = (stdout, stderr)
        self._held: list[tuple[int, str]] | None = []
        self.image_id: str | None = None
        self.error: Exception | None = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def sink(self, stream: int) -> Sink:
        target = self._sinks[stream]

        def write(text: str) -> None:
            if self._held is None:
                target(text)
            else:
                self._held.append((stream, text))

        return write

    def decide(self) -> bool:
        """Wait for the query: True (and the output passes) when the image is present."""
        try:
            info = self._query.result()
        except Exception as exc:  # the engine's own start fails too (rc 125) and tells
            self.error = exc
            return False
        if info is None:
            return False
        self.image_id = info.id
        self.release()
        return True

    def release(self) -> None:
        held, self._held = self._held or [], None
        for stream, text in held:
            self._sinks[stream](text)

    def not_started(self, result: ProcessResult) -> bool:
        """Whether the held attempt never ran: the engine refused the start (rc 125 on
        podman and docker), or the start timed out while the image query did too."""
        if result.outcome == "failed" and result.rc == ENGINE_RUN_FAILED:
            return True
        return result.outcome == "timeout" and isinstance(self.error, EngineTimeoutError)


class _StartTimeout(Exception):
    """The start phase (engine, image) took longer than the job's start_timeout."""


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


class Runner:
    """Runs a prepared job; see the module docstring for the lifecycle."""

    #: runs the process; tests replace it with a fake (same signature as `run_process`)
    process_runner: ProcessRunner = staticmethod(run_process)
    #: the engine a job runs in (None: on the host) with its image made present, and the
    #: image's ID (or the ImageQuery of an optimistic start); and the host command with its
    #: program found. containerrunner.testing replaces all three.
    engine_resolver: Callable[[Job], tuple[Engine | None, JobImage]] = staticmethod(_job_engine)
    program_resolver: Callable[[tuple[str, ...], dict[str, str]], tuple[str, ...]] = staticmethod(
        resolve_local
    )

    def __init__(
        self,
        config: Any,
        event_handler: EventHandler | None = None,
        status_handler: StatusHandler | None = None,
        cancel_callback: Callable[[], bool] | None = None,
        finished_callback: Callable[[Runner], Any] | None = None,
        artifacts_handler: Callable[[str], Any] | None = None,
        progress_handler: Callable[[Progress], Any] | None = None,
        pull_progress_handler: Callable[[PullProgress], Any] | None = None,
    ) -> None:
        self.config = config
        self.event_handler = event_handler
        self.status_handler = status_handler
        self.cancel_callback = cancel_callback
        self.finished_callback = finished_callback
        self.artifacts_handler = artifacts_handler
        self.progress_handler = progress_handler
        #: gets a PullProgress per step while the job's image is pulled (before it starts)
        self.pull_progress_handler = pull_progress_handler
        self._progress = ProgressTracker()
        self.status = "unstarted"
        self.rc: int | None = None
        self.reason = ""
        self.errored = False
        self.canceled = False
        self.timed_out = False
        self._log: EventLog | None = None
        self._job_output: JobOutput | None = None
        self._results = Collector()
        self._provenance: dict[str, Any] | None = None
        self._stats: dict[str, Any] | None = None
        self._kept_output: dict[str, str] | None = None  # stdout/stderr of a removed temp dir
        #: stop requests and timeout decisions for the running process (cancel, terminate,
        #: kill; containerrunner.stream's keep_waiting)
        self.steering = Steering()
        #: how a stop went: "terminated" within the grace, "killed" after it, "" not stopped
        self.stopped = ""
        #: taps used by containerrunner.stream: each output chunk (stream name, text), and
        #: each timeout that passed (True: only report it, the decision comes via steering)
        self.output_handler: Callable[[str, str], None] | None = None
        self.timeout_handler: Callable[[TimeoutNotice], bool] | None = None
        #: set by a caller that never hands this Runner out (a synchronous helper): with a
        #: temporary dir and no handler that is given the dir, the config or the Runner, no
        #: one can read its artifacts before they are removed, so its events stay in memory
        #: only (no job_events files: one file creation per output line saved)
        self.unobserved = False

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
        return str(self._artifacts().path)

    def _output(self, name: str) -> IO[str]:
        if self._kept_output is not None:
            return io.StringIO(self._kept_output.get(name, ""))
        return open(Path(self.artifact_dir) / name, encoding="utf-8", errors="replace")

    @property
    def stdout(self) -> IO[str]:
        """An open handle on the job's stdout artifact."""
        return self._output("stdout")

    @property
    def stderr(self) -> IO[str]:
        """An open handle on the job's stderr artifact (empty in pexpect mode: merged)."""
        return self._output("stderr")

    @property
    def events(self) -> Iterator[dict[str, Any]]:
        """Events in counter order; while the job runs, waits for new ones (no polling).

        A Runner that never started has none.
        """
        if self._log is None:
            return iter(())
        return self._log.follow()

    def start(
        self, on_end: Callable[[BaseException | None], Any] | None = None
    ) -> threading.Thread:
        """Run the job in a new thread, returned started; `events` readers wait from now on.

        Not a daemon thread: an exiting interpreter waits for the job (and its cleanup).
        `on_end`, when given, is called in that thread once run() returned (with None) or
        raised (with the exception, which it then owns: the thread does not raise it).
        """
        self._open_log()

        def work() -> None:
            try:
                self.run()
            except BaseException as exc:
                if on_end is None:
                    raise
                on_end(exc)
            else:
                if on_end is not None:
                    on_end(None)

        thread = threading.Thread(target=work, name=f"containerrunner-{self.job.ident}")
        thread.start()
        return thread

    def _open_log(self) -> EventLog:
        if self._log is None:
            job = self.job
            artifacts = self._artifacts()
            temporary = job.temporary_dir is not None
            self._log = EventLog(
                artifacts.path, in_memory=temporary, files=not (temporary and self._unseen())
            )
        return self._log

    def _unseen(self) -> bool:
        """Nothing but this Runner reads the job's artifacts while they exist."""
        handed_out = (self.status_handler, self.artifacts_handler, self.finished_callback)
        return self.unobserved and all(handler is None for handler in handed_out)

    @property
    def stats(self) -> dict[str, Any] | None:
        """The final playbook_on_stats data (ok/changed/failures/dark/... per host)."""
        return self._stats

    def progress(self) -> Progress:
        """Where the job is: results expected so far, completed, failed, current task."""
        return self._progress.snapshot()

    def task_results(self) -> Summary:
        """Per-task results so far (see containerrunner.results): every event counts, also
        those the event handler dropped; final once the job has ended."""
        return self._results.summary()

    def host_events(self, host: str) -> Iterator[dict[str, Any]]:
        """The events whose event_data names `host`."""
        for event in self.events:
            if event.get("event_data", {}).get("host") == host:
                yield event

    def _artifacts(self) -> ArtifactDir:
        job = self.job
        return ArtifactDir(job.artifact_base, job.ident, job.fact_cache or FACT_CACHE)

    def get_fact_cache(self, host: str) -> dict[str, Any]:
        return self._artifacts().get_fact_cache(host)

    def set_fact_cache(self, host: str, data: dict[str, Any]) -> None:
        self._artifacts().set_fact_cache(host, data)

    def cancel(self) -> None:
        """Ask the running job to stop; its status becomes `canceled`."""
        self.terminate()

    def terminate(self, grace: float | None = None) -> None:
        """Stop the job (status `canceled`): SIGTERM, then SIGKILL after `grace` seconds
        (default: the job's termination_grace; a container gets `<engine> stop --time`)."""
        checked = None if grace is None else as_grace(grace, "grace")
        self.steering.stop(StopRequest("canceled", "canceled", checked))

    def kill(self) -> None:
        """Stop the job at once (status `canceled`): SIGKILL, the container removed."""
        self.terminate(grace=0)

    # ------------------------------------------------------------------ lifecycle
    def _set_status(self, status: str) -> None:
        self.status = status
        if self.status_handler is not None:
            data: dict[str, Any] = {"status": status, "runner_ident": self.job.ident}
            if status == "starting":  # as ansible-runner; env with secret values masked
                data.update(command=list(self.job.command), cwd=self.job.execution.cwd)
                env = getattr(self.config, "env", None)
                if env is not None:
                    data["env"] = env
            self.status_handler(data, self.config)

    def _on_event(self, event: dict[str, Any]) -> None:
        """One numbered event (see joboutput): the handler decides whether it is kept."""
        recap = event.pop(STATS_KEY, None)
        version = event.pop(ANSIBLE_VERSION_KEY, None)
        if isinstance(version, str) and self._provenance is not None:
            self._provenance["ansible_core"] = version  # written again when the job ends
        if event.get("event") == "playbook_on_stats":
            data = recap if isinstance(recap, dict) else event.get("event_data")
            stats = {"event": "playbook_on_stats", "event_data": data}
            self._stats = stats_from_events([stats])
            self._artifacts().write_stats(self._stats)
            self._results.add(stats)
        else:
            self._results.add(event)
            if self._progress.add(event) and self.progress_handler is not None:
                self.progress_handler(self._progress.snapshot())
        if self._job_output is not None:
            self._job_output.event_line(event)
        if self.event_handler is not None and self.event_handler(event) is not True:
            return
        log = self._open_log()
        try:
            log.write(event)
        except OSError as exc:
            raise ArtifactWriteError(self._artifacts().path, "an event file", exc) from exc
        log.add(event)

    def run(self) -> tuple[str, int | None]:
        """Run the job to the end; returns (status, rc)."""
        job = self.job
        log = self._open_log()
        self._set_status("starting")
        artifacts = self._artifacts()
        began = time.monotonic()
        retry: _NotStarted | None = None
        while True:  # twice at most: an optimistic start that failed, then the query first
            ended = self._attempt(job, log, artifacts, began, retry)
            if not isinstance(ended, _NotStarted):
                return ended
            retry = ended

    def _attempt(
        self,
        job: Job,
        log: EventLog,
        artifacts: ArtifactDir,
        began: float,
        retry: _NotStarted | None,
    ) -> tuple[str, int | None] | _NotStarted:
        """One start of the job, run to its end: (status, rc); or, when an optimistic start
        never ran (see _StartGate), the _NotStarted to start again from, with what this
        attempt made removed (`_undo_attempt`)."""
        claimed = False
        base_existed = artifacts.base.exists()
        try:
            engine, image, start_spent = self._resolve_engine(job, began, retry)
            if job.temporary_dir is not None:
                make_dir(job.temporary_dir)
            artifacts.claim()
            claimed = True
            if job.rotate_artifacts:
                rotate(job.artifact_base, job.rotate_artifacts, protect=job.ident)
            own_container = engine is not None and job.execution.session is None
            workspace = Workspace.open(
                job, engine, container_name(job.ident) if own_container else None
            )
        except _StartTimeout as exc:
            self._abort(job, artifacts if claimed else None, None, timeout=str(exc))
            return self.status, self.rc
        except BaseException as exc:
            self._abort(job, artifacts if claimed else None, exc)
            raise
        failing: BaseException | None = None
        not_started: _NotStarted | None = None
        try:
            with workspace:
                module_dirs: set[str] = set()  # a host job's, noted before it is stopped
                stopped = True  # also when _execute raises (KeyboardInterrupt, a sink's error)
                try:
                    result = self._execute(
                        job, engine, image, workspace, artifacts, start_spent, module_dirs
                    )
                    stopped = result.outcome in ("canceled", "timeout")
                finally:
                    if engine is None and stopped:  # what left the process group goes too
                        stop_job_processes(job.runtime_dir, module_dirs)
            self.reason = result.reason
            self.stopped = result.stopped
            self.status = result.outcome
            self.canceled = result.outcome == "canceled"
            self.timed_out = result.outcome == "timeout"
            self.rc = STOPPED_RC if self.canceled or self.timed_out else result.rc
        except _NotStarted as exc:
            not_started = exc
        except BaseException as exc:
            failing = exc
            self.errored = True
            request = self.steering.stop_request
            self.canceled = isinstance(exc, KeyboardInterrupt) or (
                request is not None and request.outcome == "canceled"
            )
            self.status = "canceled" if self.canceled else "failed"
            self.rc = STOPPED_RC if self.canceled or self.rc is None else self.rc
            raise
        finally:
            if not_started is None:
                self._end_attempt(job, log, artifacts, failing)
        if not_started is not None:
            self._undo_attempt(job, artifacts, base_existed)
            return not_started
        return self.status, self.rc

    def _end_attempt(
        self, job: Job, log: EventLog, artifacts: ArtifactDir, failing: BaseException | None
    ) -> None:
        try:
            with _noted_on(failing, "writing the outcome", ArtifactWriteError):
                try:
                    artifacts.write_result(self.status, self.rc)
                    log.close()
                    self._write_outcome(job, artifacts, log)
                except OSError as exc:
                    raise ArtifactWriteError(artifacts.path, "the job's outcome", exc) from exc
        finally:
            try:
                artifacts.release()
            finally:
                self._end(job, artifacts, failing)

    def _undo_attempt(self, job: Job, artifacts: ArtifactDir, base_existed: bool) -> None:
        """Remove what an optimistic start that never ran made: the artifacts dir it claimed
        (new: see _starts_at_once; a dir of the failed attempt's empty outputs) and the
        temporary dir, so that the job starts again, or fails, as if it had not been made."""
        self._job_output = None
        self._provenance = None
        if job.temporary_dir is not None:
            remove_dir(job.temporary_dir)
            return
        shutil.rmtree(artifacts.path, ignore_errors=True)
        if not base_existed:
            with contextlib.suppress(OSError):
                artifacts.base.rmdir()

    def _resolve_engine(
        self, job: Job, began: float, retry: _NotStarted | None = None
    ) -> tuple[Engine | None, JobImage, float]:
        """The job's engine (None: on the host), its image (ID, or the query alongside an
        optimistic start) and the seconds of its start_timeout spent since `began`; raises
        _StartTimeout when the image phase used them all. After an optimistic start that
        never ran (`retry`), the query's own failure is raised here, else the image is made
        present with the query first (and pulled as the policy says)."""
        start_timeout = job.execution.start_timeout
        try:
            with pull_progress_to(self.pull_progress_handler):
                if retry is None:
                    engine, image = self.engine_resolver(job)
                elif retry.error is not None:
                    raise retry.error
                else:
                    engine, image = _job_engine(job, at_once=False)
        except EngineTimeoutError as exc:
            if start_timeout is None:
                raise
            raise _StartTimeout(start_timeout_reason(start_timeout, "image", str(exc))) from exc
        spent = time.monotonic() - began
        if engine is not None and start_timeout is not None and spent >= start_timeout:
            detail = f"{job.execution.container_image} was not ready in time"
            raise _StartTimeout(start_timeout_reason(start_timeout, "image", detail))
        return engine, image, spent

    def _write_outcome(self, job: Job, artifacts: ArtifactDir, log: EventLog) -> None:
        """What the job's events add up to: stats, summary.json, junit.xml, the provenance
        with the ansible-core version the plugin reported."""
        if self._stats is None and job.events:  # the stats event missed the stream
            self._stats = stats_from_events(log.follow())
        if self._provenance is not None and "ansible_core" in self._provenance:
            artifacts.write_provenance(self._provenance)
        if job.events:
            from containerrunner.junit import write_junit  # xml.etree: only event jobs need it

            summary = self._results.summary(parsed=False)  # ok/changed results as their text
            write_summary(artifacts.path, summary)
            write_junit(artifacts.path, summary, job.ident)

    def _execute(
        self,
        job: Job,
        engine: Engine | None,
        image: JobImage,
        workspace: Workspace,
        artifacts: ArtifactDir,
        start_spent: float,
        module_dirs: set[str],
    ) -> ProcessResult:
        """Run the job's process; a host job's Ansible module dirs are added to `module_dirs`
        when it is to be stopped (`tempdirs.job_module_dirs`). With the image query still
        running (an optimistic start) the container starts at once, its output held until
        the query says the image is present (_StartGate), and the provenance is written
        then; raises _NotStarted when the engine refused the start before that."""
        env = {**job.execution.envvars, **job.env}
        mounts: list[Mount] = [*job.extra_mounts, Mount.same_path(workspace.path)]
        session = job.execution.session
        if engine is not None and session is None:  # a session's mounts are fixed at its start
            mounts += self._passwd_mount(engine, workspace)
        # ansible-runner's /runner (not in a session: its mounts are fixed at its start)
        if engine is not None and session is None and job.private_data_dir is not None:
            mounts += runner_layout_mounts(
                job.private_data_dir,
                job.artifact_base,
                job.execution.container_volume_mounts,
                job.execution.cwd,
            )
        interactive = job.input_fd is not None
        tty = job.mode == "pexpect" or (interactive and _isatty(job.input_fd))
        output = JobOutput(
            artifacts.stdout_path,
            artifacts.stderr_path,
            ident=job.ident,
            deliver=self._on_event,
            merged=tty,
            write_files=not job.suppress_output_file,
            output_fd=job.output_fd,
            error_fd=job.error_fd,
            quiet=job.quiet,
            json_mode=job.json_mode,
            tap=self.output_handler,
        )
        self._job_output = output
        workspace.on_close(output.close)  # after the event stream's last event (LIFO)
        if job.events:
            env.update(self._event_env(job, artifacts))
            env["CONTAINERRUNNER_EVENT_FIFO"] = workspace.event_stream(
                output.sequencer.plugin_event,
                on_drained=lambda: self._deliver_event_files(artifacts, output),
            ).path.as_posix()
            mounts.append(Mount.same_path(CALLBACK_DIR, read_only=True))
            mounts.append(Mount.same_path(str(artifacts.path)))
        # streamed (container_transport='stream'): the key and the answers travel in the
        # relay's payload; the bootstrap loads the key and answers the prompts in the container
        streamed = engine is not None and session is None and job.execution.transport == "stream"
        if job.ssh_key and not streamed:
            env["SSH_AUTH_SOCK"] = workspace.ssh_agent(job.ssh_key).socket
        if engine is None:  # temp files in the runtime dir (a container's /tmp is its own)
            env.update(workspace.temp_env(job.execution.envvars))
        command = job.command if engine is not None else self.program_resolver(job.command, env)
        # engine_resolver() above decided where it runs and applied the pull policy (once).
        inv = containerize(
            command,
            options=dataclasses.replace(
                job.execution, pull="never", process_isolation=engine is not None
            ),
            ident=job.ident,
            env=env,
            extra_mounts=mounts,
            tty=tty,
            interactive=interactive or job.mode == "pexpect",
            engine=engine,
            runtime_dir=workspace.path,
            # prompts are answered in pexpect mode only, as on the host (pipes ignore them)
            secrets=StreamSecrets(dict(job.passwords) if job.mode == "pexpect" else {}, job.ssh_key)
            if streamed
            else None,
        )
        artifacts.write_command(job.command, inv.cwd, env.keys())
        gate = None
        if isinstance(image, ImageQuery):
            gate = _StartGate(image, output.stdout, output.stderr)
        else:
            self._write_provenance(artifacts, inv, engine, image)

        def on_start(pid: int) -> None:
            if gate is not None:
                if not gate.decide():
                    return  # held: not known to run (see below)
                self._write_provenance(artifacts, inv, engine, gate.image_id)
            self._set_status("running")

        controls = ProcessControls(
            mode=job.mode,
            passwords={} if streamed else job.passwords,
            job_timeout=job.execution.job_timeout,
            idle_timeout=job.execution.idle_timeout,
            cancel_callback=self.cancel_callback,
            steering=self.steering,
            on_timeout=self.timeout_handler,
            termination_grace=job.execution.termination_grace,
            start_timeout=job.execution.start_timeout,
            start_spent=start_spent,
            cancel_poll=job.cancel_poll,
            stdin=job.input_fd,
            stdout=output.stdout if gate is None else gate.sink(0),
            stderr=output.stderr if gate is None else gate.sink(1),
            on_start=on_start,
            before_stop=(
                (lambda: module_dirs.update(job_module_dirs(workspace.path)))
                if engine is None
                else None
            ),
        )
        try:
            result = self.process_runner(inv, controls)
            if gate is not None and gate.held:
                if gate.not_started(result):
                    raise _NotStarted(gate.error)  # its output stays unseen
                # it ran although its image was not known present (lost to a race): all of it
                gate.release()
                self._write_provenance(artifacts, inv, engine, None)
                self._set_status("running")
            return result
        finally:
            output.finish()

    @staticmethod
    def _passwd_mount(engine: Engine, workspace: Workspace) -> list[Mount]:
        """/etc/passwd with an entry for the caller, where the engine gives none (docker as a
        non-root uid: OpenSSH's client needs one); generated in the runtime dir."""
        uid = os.getuid()
        passwd = engine.passwd_file(uid, os.getgid(), login_name(uid))
        if passwd is None:
            return []
        path = workspace.write(PASSWD_FILE, passwd, 0o644)
        return [Mount(source=path, target="/etc/passwd", read_only=True)]

    def _deliver_event_files(self, artifacts: ArtifactDir, output: JobOutput) -> None:
        """Deliver the events the plugin wrote as files instead of FIFO lines (a write to the
        FIFO failed); called once, after the FIFO's last line and the process's end.

        The plugin never writes to the FIFO again after a failed write, so these come after
        every streamed event: delivered in counter order they keep the handler's order. Each
        is numbered past the verbose lines like a streamed one; its file is removed, then
        written again under that number if the handler keeps it (a dropped event leaves none).
        The files the runner wrote are the ones its log lists: no per-event bookkeeping.
        """
        for path, event in unlisted_event_files(artifacts.path, self._open_log().lists):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._on_event(output.sequencer.shifted(event))

    def _abort(
        self,
        job: Job,
        artifacts: ArtifactDir | None,
        failing: BaseException | None,
        timeout: str = "",
    ) -> None:
        """The job could not start (no engine or image, ident in use, ...; or, with
        `timeout`, its start phase timed out): nothing ran.

        Writes no artifact (the directory may hold an earlier job's), removes what was made,
        and ends the lifecycle as `failed` (`timeout`).
        """
        if timeout:
            self.status, self.timed_out, self.reason = "timeout", True, timeout
        else:
            self.errored = True
            self.status = "failed"
        self.rc = STOPPED_RC  # ansible-runner's rc for a job that errored
        if artifacts is not None:
            artifacts.release()
        self._open_log().abandon()
        self._end(job, None, failing)

    def _end(self, job: Job, artifacts: ArtifactDir | None, failing: BaseException | None) -> None:
        """Tell the handlers, then remove a temporary dir (its outputs kept in memory).

        Runs on every path; when the job is already `failing` with an exception, a handler's
        own exception is attached to it as a note instead of replacing it.
        """
        try:
            with _noted_on(failing, "status_handler"):
                self._set_status(self.status)
            if artifacts is not None and self.artifacts_handler is not None:
                with _noted_on(failing, "artifacts_handler"):
                    self.artifacts_handler(str(artifacts.path))
            if self.finished_callback is not None:
                with _noted_on(failing, "finished_callback"):
                    self.finished_callback(self)
        finally:
            if job.temporary_dir is not None:
                self._keep_outputs(artifacts)
                remove_dir(job.temporary_dir)

    def _keep_outputs(self, artifacts: ArtifactDir | None) -> None:
        kept: dict[str, str] = {}
        if artifacts is not None:
            for name in ("stdout", "stderr"):
                with contextlib.suppress(OSError):
                    kept[name] = (artifacts.path / name).read_text("utf-8", errors="replace")
        self._kept_output = kept

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
            "CONTAINERRUNNER_MARK_OUTPUT": "1",
        }
        if job.json_mode:
            env["CONTAINERRUNNER_JSON_MODE"] = "1"
        if job.omit_event_data:
            env["CONTAINERRUNNER_OMIT_EVENT_DATA"] = "1"
        if job.only_failed_event_data:
            env["CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA"] = "1"
        if job.fact_cache:
            env["ANSIBLE_CACHE_PLUGIN"] = "jsonfile"
            env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(artifacts.fact_cache)
        return env

    def _write_provenance(
        self, artifacts: ArtifactDir, inv: Invocation, engine: Engine | None, image_id: str | None
    ) -> None:
        record: dict[str, Any] = {
            "containerrunner": __version__,
            "ident": self.job.ident,
            "command": list(self.job.command),
            "argv": list(inv.argv),
            "cwd": inv.cwd,
            "process_isolation": engine is not None,
            "inputs": input_digests(self.job.command, inv.cwd),
        }
        if engine is not None:
            image = self.job.execution.container_image
            record.update(
                engine=engine.name,
                engine_executable=engine.executable,
                engine_endpoint=engine.where or None,
                engine_version=engine_version(engine),
                image=image,
                image_id=image_id,
                image_pinned=is_pinned(image),
                image_pin_matched=pin_matches(image, image_id),
                container_name=inv.container_name,
                container_transport=self.job.execution.transport,
            )
            if inv.exec_spec is not None:
                record.update(container_name=inv.exec_spec.container, session=True)
        artifacts.write_provenance(record)
        self._provenance = record


def input_digests(command: tuple[str, ...], cwd: str) -> dict[str, dict[str, str]]:
    """{"playbook"|"inventory"|"extravars": {path: sha256 of its content}} for provenance."""
    digests: dict[str, dict[str, str]] = {}
    files = ansible_input_files(command, cwd)
    if not any(files.values()):
        return {kind: {} for kind in files}
    import hashlib  # deferred: a command without Ansible inputs does not load OpenSSL

    for kind, paths in files.items():
        digests[kind] = {}
        for path in paths:
            with contextlib.suppress(OSError), open(path, "rb") as fh:
                digests[kind][path] = hashlib.file_digest(fh, "sha256").hexdigest()
    return digests


@contextlib.contextmanager
def _noted_on(
    failing: BaseException | None,
    what: str,
    kind: type[Exception] | tuple[type[Exception], ...] = Exception,
) -> Iterator[None]:
    """Run a handler; while `failing` propagates, its exception (of `kind`) becomes a note on
    `failing`."""
    if failing is None:
        yield
        return
    try:
        yield
    except kind as exc:
        failing.add_note(f"containerrunner: {what} also raised {type(exc).__name__}: {exc}")
