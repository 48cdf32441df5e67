"""A job's workspace: its private runtime dir and everything that lives in it while it runs.

The runtime dir (see `tempdirs`) holds the files the job builder generated (inventory,
extravars, inline plays), an /etc/passwd for docker as a non-root caller, the event FIFO,
the ssh-agent socket and, for a host job, its temp dir (`TMPDIR`, `ANSIBLE_LOCAL_TEMP`); it is
mounted into the container at the same path. Everything the
workspace starts or makes is registered on one `ExitStack`, so `close()` undoes it all, in
reverse order, on every path:

    with Workspace.open(job, engine) as ws:
        stream = ws.event_stream(on_event)   # the FIFO and its reader
        agent = ws.ssh_agent(key)            # the key lives in the agent, never in a file
        ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from containerrunner.artifacts import write_text_atomic
from containerrunner.events import EventStream
from containerrunner.isolation.engine import Engine
from containerrunner.job import Job
from containerrunner.sshagent import SshAgent
from containerrunner.tempdirs import Owner, make_dir, reap_stale_meanwhile, remove_dir

EVENT_FIFO = "events.fifo"
AGENT_SOCKET = "agent.sock"
PASSWD_FILE = "passwd"  # /etc/passwd for a caller the engine gives no entry (docker, non-root)
TEMP_DIR = "tmp"  # a host job's temp dir (see Workspace.temp_env)
# What a host job's temp dir replaces: where its processes make temp files (AnsiballZ's
# `ansible_<module>_payload_*` dirs among them), and Ansible's controller temp dir (default
# ~/.ansible/tmp, where ansible-playbook makes `ansible-local-*`). A job stopped mid-task
# leaves both behind; in the runtime dir they go with it.
TEMP_VARIABLES = ("TMPDIR", "ANSIBLE_LOCAL_TEMP")


class Workspace:
    """The runtime dir of one running job; see the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stack = contextlib.ExitStack()

    @classmethod
    def open(cls, job: Job, engine: Engine | None, container: str | None) -> Workspace:
        """Make the job's runtime dir (owned by this process) and write its generated files.

        What dead processes left in the temp dir is removed meanwhile
        (`tempdirs.reap_stale_meanwhile`: off the start's path, joined when the job ends).
        """
        reaping = reap_stale_meanwhile()
        owner = Owner.current(
            container=container,
            engine=engine.name if engine else None,
            executable=engine.executable if engine else None,
            endpoint=engine.where if engine else None,
        )
        workspace = cls(job.runtime_dir)
        workspace._stack.callback(reaping.join)  # last of all on close
        make_dir(job.runtime_dir, owner=owner)
        workspace._stack.callback(remove_dir, job.runtime_dir)
        try:
            for generated in job.files:
                workspace.write(generated.name, generated.content)
        except BaseException:
            workspace.close()
            raise
        return workspace

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def write(self, name: str, content: str, mode: int = 0o600) -> str:
        """Write the generated file `name` (atomically, with `mode`); returns its path."""
        path = self.file(name)
        write_text_atomic(path, content, mode)
        return path

    def event_stream(
        self,
        on_event: Callable[[dict[str, Any]], None],
        on_drained: Callable[[], Any] | None = None,
    ) -> EventStream:
        """The event FIFO with its reader started; closed (drained, joined) with the workspace.

        `on_drained` is called right after the stream closed (its last line delivered), unless
        `on_event` raised."""
        stream = EventStream(self.file(EVENT_FIFO))
        if on_drained is not None:
            drained = on_drained

            def after_close() -> None:
                if stream.error is None:
                    drained()

            self._stack.callback(after_close)
        self._stack.callback(stream.close)
        stream.start(on_event)
        return stream

    def ssh_agent(self, key: str) -> SshAgent:
        """An ssh-agent holding `key`, its socket in the runtime dir; stopped on close."""
        agent = SshAgent.start(self.file(AGENT_SOCKET), key)
        self._stack.callback(agent.stop)
        return agent

    def temp_env(self, given: Mapping[str, str]) -> dict[str, str]:
        """The variables of TEMP_VARIABLES that point a host job's temp files into its own
        temp dir (made now, 0700, removed with the runtime dir), but not those the user set:
        in `given` (the job's envvars), or ANSIBLE_LOCAL_TEMP in this process's environment
        (an Ansible setting; TMPDIR there is where the runtime dir itself is)."""
        taken = set(given) | ({"ANSIBLE_LOCAL_TEMP"} & set(os.environ))
        names = [name for name in TEMP_VARIABLES if name not in taken]
        if not names:
            return {}
        path = self.file(TEMP_DIR)
        os.mkdir(path, 0o700)
        return dict.fromkeys(names, path)

    def on_close(self, callback: Callable[[], Any]) -> None:
        """Call `callback` on close, before what was registered earlier (after what later)."""
        self._stack.callback(callback)

    def close(self) -> None:
        """Stop and remove everything, last made first; re-raises the event reader's error."""
        self._stack.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
