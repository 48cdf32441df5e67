"""Warm EE sessions: one container of an EE image kept running, jobs exec'd in it.

    with containerrunner.Session(image="localhost/containerrunner-ee:latest", engine="podman",
                                 mounts=["/srv/project"]) as session:
        containerrunner.run(private_data_dir="/srv/project/pdd", playbook="site.yml",
                            session=session)
        containerrunner.get_plugin_docs(["ansible.builtin.copy"], session=session)

A call given `session=` runs as `<engine> exec` in the session's container instead of
`<engine> run`: the image check, the container's creation and start are paid once, by
`Session.start()`. `session=` is an execution option of every helper (the `_async` twins,
`RunnerConfig` and `run_group` too), so nothing of the helpers' signatures is repeated here.

The container's mounts are fixed when it starts: the session's runtime dir (a temp dir of
this process: each call's runtime dir — generated files, the event FIFO, the ssh-agent socket —
and, without a private data dir, its temporary private data dir are made in it), the callback
plugin (read-only) and `mounts` (each at the same path unless a target is given). A call that
needs a path the session does not mount (its cwd, private data dir, artifact dir, a file on
its command line, a `container_volume_mounts` entry), or an option that only applies when a
container is made (`container_options`, `container_network`, another image or engine), is
refused with a ConfigurationError naming the path or option.

The container is labelled like every container of ours (owner pid, host and uid) and named in
the owner record of the session's runtime dir: it is removed by `close()` (the `with` block's
end, on every path), when the Session is garbage-collected or the interpreter exits, and, when
the owner is killed, by the next job of any containerrunner process (`tempdirs.reap_stale`).

The container also runs the preloader (`preload/preloader.py`, unless `preload=False`): the
ansible-doc, ansible-inventory and ansible-config calls of the helpers are forked from a Python
that imported what they need that does not depend on ansible's configuration, instead of being
exec'd (`process/preload.py`; any failure of the preloader: exec, with a debug log).

Once the container runs, the session's record (`session_record.py`) is written into its runtime
dir: `Session.attach(ID)` in another process of the user finds it there and uses the container
without owning it (the CLI's `session start|stop|list` and `--session ID`, cli/sessioncmds.py).
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, cast

from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ConfigurationError, EngineError
from containerrunner.isolation.argv import build_run_argv
from containerrunner.isolation.containerize import container_labels, container_name
from containerrunner.isolation.engine import (
    Engine,
    EngineName,
    current_endpoint,
    detect_engine,
    make_engine,
    run_engine,
)
from containerrunner.isolation.images import ensure_image
from containerrunner.isolation.mounts import is_system_dir, normalise_mounts, parse_volume_mount
from containerrunner.isolation.network import check_default_network
from containerrunner.isolation.reaper import remove_container
from containerrunner.isolation.types import ContainerSpec, Mount
from containerrunner.preload import PRELOAD_DIR, PRELOADER
from containerrunner.process.preload import PRELOAD_LOG
from containerrunner.progress import PullProgress
from containerrunner.runner import CALLBACK_DIR
from containerrunner.session_record import SessionRecord, find_session, write_record
from containerrunner.tempdirs import Owner, fresh_path, make_dir, remove_dir
from containerrunner.validate import as_str_tuple, check_handlers, job_ident

LABEL_SESSION = "containerrunner.session"
#: what the session's container runs: nothing, until it is stopped (the image's init, tini in
#: the project's EE, forwards the stop's SIGTERM)
IDLE_COMMAND = ("sleep", "infinity")
#: in the session's runtime dir: the preloader's socket, and its own messages (no secrets)
PRELOAD_SOCKET = "preload.sock"
#: the commands the preloader serves (preloader.COMMANDS); others are exec'd
PRELOADED_COMMANDS = frozenset({"ansible-doc", "ansible-inventory", "ansible-config"})
#: the container's command with the preloader: it runs in the background, and the container
#: idles in `sleep` whether it runs or not (a preloader that fails only costs the speed-up)
PRELOAD_COMMAND = (
    "sh",
    "-c",
    'python3 "$0" "$1" >"$2" 2>&1 </dev/null & exec sleep infinity',
    PRELOADER,
)
START_TIMEOUT = 120.0


class Session:
    """A warm EE container; see the module docstring. Nothing starts before `start()` (or
    entering the `with` block)."""

    def __init__(
        self,
        image: str | None = None,
        engine: str = "auto",
        mounts: Sequence[str] | None = None,
        *,
        container_options: Sequence[str] | None = None,
        container_network: str | None = None,
        pull: str = "missing",
        start_timeout: float | None = None,
        ident: str | None = None,
        pull_progress_handler: Callable[[PullProgress], Any] | None = None,
        preload: bool = True,
    ) -> None:
        #: gets a PullProgress per step while start() pulls the image (docs/python-api.md)
        self.pull_progress_handler = check_handlers(
            {"pull_progress_handler": pull_progress_handler}
        )["pull_progress_handler"]
        self._options = ExecutionOptions.from_kwargs(
            process_isolation=True,
            process_isolation_executable=engine,
            container_image=image,
            container_options=container_options,
            container_network=container_network,
            pull=pull,
            start_timeout=start_timeout,
        )
        cwd = os.getcwd()
        given = as_str_tuple(mounts, "mounts") if mounts is not None else None
        if given is None:  # the caller's cwd, where relative paths of its calls point
            given = () if is_system_dir(cwd) else (cwd,)
        self._mounts = tuple(parse_volume_mount(text, cwd) for text in given)
        self.ident = job_ident(ident)
        self.container = container_name(f"session-{self.ident}")
        self._engine: Engine | None = None
        self._image_id: str | None = None
        self._runtime_dir: str | None = None
        self._all_mounts: tuple[Mount, ...] = ()
        self._finalizer: weakref.finalize[Any, Session] | None = None
        self._attached = False  # Session.attach: another process's session, used, not owned
        #: run ansible-doc/-inventory/-config calls in the preloader (module docstring)
        self.preload = preload
        #: who holds the session, as `containerrunner session list` shows it (see HELD_BY)
        self.held_by = "python"

    @classmethod
    def attach(cls, ident: str) -> Session:
        """The running session `ident` (or a unique prefix of it) of another process of this
        user — a `containerrunner session start` or a Python process's Session — to run calls
        in with `session=`. Its container belongs to its holder: `close()` on the attached
        object only lets go of it. ConfigurationError when no running session matches."""
        record = find_session(ident)
        self = cls(image=record.image, engine=record.engine, mounts=[], ident=record.ident)
        self.container = record.container
        self.held_by = record.held_by
        self._engine = make_engine(cast(EngineName, record.engine), record.executable)
        self._image_id = record.image_id
        self._runtime_dir = record.runtime_dir
        self._all_mounts = record.mounts
        self._attached = True
        return self

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        if self._attached:
            return self._runtime_dir is not None
        return self._finalizer is not None and self._finalizer.alive

    @property
    def attached(self) -> bool:
        """True for a session of another process, got with `Session.attach`."""
        return self._attached

    def _started(self) -> tuple[Engine, str]:
        if not self.running or self._engine is None or self._runtime_dir is None:
            raise ConfigurationError(
                f"session {self.ident} is not running: use it in a `with` block or call "
                f"start() first (and not after close())"
            )
        return self._engine, self._runtime_dir

    @property
    def engine(self) -> Engine:
        return self._started()[0]

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def image(self) -> str:
        return self._options.container_image

    @property
    def image_id(self) -> str | None:
        return self._image_id

    @property
    def runtime_dir(self) -> str:
        """The session's runtime dir (mounted read-write): calls make theirs in it."""
        return self._started()[1]

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """Everything the container mounts (the runtime dir and callback plugin included)."""
        return self._all_mounts

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Session:
        """Check the image (pull policy) and start the container; returns self."""
        if self.running:
            return self
        options = self._options
        engine = detect_engine(options.engine)
        check_default_network(engine, options.container_network, options.container_options)
        self._image_id = ensure_image(
            engine,
            options.container_image,
            options.pull,
            options.start_timeout,
            listener=self.pull_progress_handler,
        )
        owner = Owner.current(
            self.container, engine.name, engine.executable, current_endpoint(engine.name)
        )
        runtime = make_dir(fresh_path(f"session-{self.ident[:8]}"), owner=owner)
        fixed = [Mount.same_path(runtime), Mount.same_path(CALLBACK_DIR, read_only=True)]
        if self.preload:
            fixed.append(Mount.same_path(PRELOAD_DIR, read_only=True))
        mounts = normalise_mounts([*fixed, *self._mounts])
        spec = ContainerSpec(
            engine=engine,
            image=options.container_image,
            name=self.container,
            workdir=runtime,
            mounts=tuple(mounts),
            labels={**container_labels(self.ident), LABEL_SESSION: "1"},
            user=(os.getuid(), os.getgid()),
            options=options.container_options,
            network=options.container_network,
            detach=True,
        )
        try:
            command: tuple[str, ...] = IDLE_COMMAND
            if self.preload:
                socket_path = os.path.join(runtime, PRELOAD_SOCKET)
                log_path = os.path.join(runtime, PRELOAD_LOG)
                # made empty before the container starts: "starting" (process/preload.py's
                # _connect waits) holds from the first call on, also while the container's
                # shell has not yet opened it (a loaded machine), not only once it has
                os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
                command = (*PRELOAD_COMMAND, socket_path, log_path)
            argv = build_run_argv(spec, command)
            proc = run_engine(engine, argv[1:], options.start_timeout or START_TIMEOUT)
            if proc.returncode != 0:
                raise EngineError(
                    f"{engine.name} could not start the session container {self.container} "
                    f"from {options.container_image} (rc {proc.returncode}): "
                    f"{proc.stderr.strip()[-2000:]}"
                )
        except BaseException:
            _remove(engine, self.container, runtime)
            raise
        self._engine, self._runtime_dir, self._all_mounts = engine, runtime, tuple(mounts)
        self._finalizer = weakref.finalize(self, _remove, engine, self.container, runtime)
        try:
            write_record(self.record())
        except BaseException:
            self.close()
            raise
        return self

    def record(self) -> SessionRecord:
        """What `containerrunner session list` and `Session.attach` read of this session."""
        engine, runtime = self._started()
        return SessionRecord(
            ident=self.ident,
            container=self.container,
            engine=engine.name,
            executable=engine.executable,
            image=self.image,
            image_id=self._image_id,
            mounts=self._all_mounts,
            created=time.time(),
            held_by=self.held_by,
            runtime_dir=runtime,
        )

    def close(self) -> None:
        """Remove the container (a call still running in it is killed) and the runtime dir;
        an attached session is only let go of (its holder removes it)."""
        if self._attached:
            self._runtime_dir = None
            return
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<containerrunner.Session {self.ident} {self.image} ({state})>"

    # ------------------------------------------------------------------ calls
    def preload_socket_for(
        self, command: Sequence[str], *, tty: bool = False, interactive: bool = False
    ) -> str | None:
        """The preloader's socket when it may run `command` (a helper CLI, no terminal, no
        stdin), else None. The process layer falls back to exec when nothing answers there
        (a session started with `preload=False` or by an older containerrunner)."""
        if not self.preload or tty or interactive or not command:
            return None
        if command[0] not in PRELOADED_COMMANDS:
            return None
        return os.path.join(self._started()[1], PRELOAD_SOCKET)

    def check_mounts(self, needed: Sequence[Mount]) -> None:
        """Refuse (ConfigurationError naming the path) a mount a call needs that the
        session's container does not have, or has read-only where the call writes."""
        for mount in needed:
            if not any(_covers(have, mount) for have in self._all_mounts):
                how = "read-only" if mount.read_only else "read-write"
                raise ConfigurationError(
                    f"{mount.source} ({how}) is not mounted in session {self.ident}, whose "
                    f"mounts are fixed when it starts: add it (or a parent dir) to "
                    f"Session(mounts=...), or run this call without session="
                )


def _covers(have: Mount, need: Mount) -> bool:
    try:
        rest = os.path.relpath(need.source, have.source)
    except ValueError:
        return False
    if rest == ".." or rest.startswith("../"):
        return False
    target = have.target if rest == "." else os.path.join(have.target, rest)
    return target == need.target and (need.read_only or not have.read_only)


def _remove(engine: Engine, name: str, runtime: str) -> None:
    try:
        remove_container(engine, name)
    finally:
        remove_dir(runtime)


def check_session_options(
    session: Any, *, engine: Any, image: Any, container_options: Any, container_network: Any
) -> None:
    """Refuse what a call in `session` asks for that only applies when a container is made."""
    if not isinstance(session, Session):
        raise ConfigurationError(
            f"session must be a containerrunner.Session, not {type(session).__name__}"
        )
    started = session.engine
    if engine not in (None, "auto", started.name):
        raise ConfigurationError(
            f"process_isolation_executable={engine!r}, but session {session.ident} runs in "
            f"{started.name}"
        )
    if image is not None and image != session.image:
        raise ConfigurationError(
            f"container_image={image!r}, but session {session.ident} runs {session.image}"
        )
    if container_options:
        raise ConfigurationError(
            "container_options apply when a container is made: give them to "
            "Session(container_options=...), not to a call in the session"
        )
    if container_network is not None:
        raise ConfigurationError(
            "container_network applies when a container is made: give it to "
            "Session(container_network=...), not to a call in the session"
        )
