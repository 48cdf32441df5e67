"""The engine through its CLI (`run_engine`): the fallback when its API cannot be had.

Answers are read from JSON (`inspect`) and exit codes, never from stderr text: whether a
container that a command failed on is still there is asked again (`ps -a --filter
name=^NAME$`, which exits 0 with or without a match), and a failed image inspect is told from
an engine that does not answer with `require_answering`.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import CommandError, EngineError
from containerrunner.isolation.client_types import (
    ContainerInfo,
    ImageInfo,
    Removal,
    container_info,
    image_info,
)
from containerrunner.isolation.engine import (
    Engine,
    cannot_start,
    not_finished,
    require_answering,
    run_engine,
)
from containerrunner.isolation.pulls import PullListener, PullReader

log = logging.getLogger(__name__)


def _documents(stdout: str) -> list[dict[str, Any]]:
    """The JSON array `<engine> inspect` prints (also for the names it found when others
    were missing); [] when there is none."""
    try:
        docs = json.loads(stdout)
    except ValueError:
        return []
    return [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []


class CliBackend:
    """A Backend over `<engine> ...` subprocesses; see the module docstring."""

    via = "the CLI"

    def __init__(self, engine: Engine, timeout: float) -> None:
        self.engine = engine
        self._timeout = timeout

    def _run(self, *args: str, timeout: float | None = None) -> Any:
        return run_engine(self.engine, list(args), timeout or self._timeout)

    def _failed(self, proc: Any, *args: str) -> EngineError:
        command = " ".join(args)
        return EngineError(
            f"`{self.engine.name} {command}` failed (rc {proc.returncode}): "
            f"{proc.stderr.strip()[-500:]}"
        )

    def version(self) -> str:
        proc = self._run("version", "--format", "{{.Client.Version}}")
        if proc.returncode != 0:
            raise self._failed(proc, "version")
        return str(proc.stdout.strip())

    def image(self, ref: str, timeout: float | None = None) -> ImageInfo | None:
        proc = self._run("image", "inspect", ref, timeout=timeout)
        docs = _documents(proc.stdout)
        if proc.returncode == 0 and docs:
            return image_info(docs[0])
        require_answering(self.engine)  # absent, or an engine that does not answer: say which
        return None

    def containers(self, label: str) -> list[ContainerInfo]:
        args = ("ps", "-a", "--no-trunc", "--filter", f"label={label}", "--format", "{{.ID}}")
        proc = self._run(*args)
        if proc.returncode != 0:
            raise self._failed(proc, *args)
        ids = proc.stdout.split()
        if not ids:
            return []
        # one inspect for all; a container removed meanwhile is just missing from its output
        inspected = self._run("container", "inspect", *ids)
        return [container_info(doc) for doc in _documents(inspected.stdout)]

    def inspect(self, name: str) -> dict[str, Any] | None:
        proc = self._run("container", "inspect", name)
        docs = _documents(proc.stdout)
        if proc.returncode == 0 and docs:
            return docs[0]
        if not self.exists(name):
            return None
        raise self._failed(proc, "container", "inspect", name)

    def exists(self, name: str) -> bool:
        """Whether container `name` exists (`ps -a` with an anchored name filter)."""
        args = ("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}")
        proc = self._run(*args)
        if proc.returncode != 0:
            raise self._failed(proc, *args)
        return name in proc.stdout.split()

    def stop(self, name: str, grace: int) -> bool:
        args = self.engine.stop_args(name, grace)
        proc = self._run(*args, timeout=self._timeout + math.ceil(grace))
        if proc.returncode == 0:
            return True
        if not self.exists(name):
            return False
        raise self._failed(proc, *args)

    def kill(self, name: str, signal: str) -> bool:
        proc = self._run("kill", "--signal", signal, name)
        return bool(proc.returncode == 0)

    def remove(self, name: str) -> Removal:
        args = self.engine.remove_args(name)
        proc = self._run(*args)
        if proc.returncode == 0:
            return "removed"
        if not self.exists(name):
            return "gone"
        # still there after a forced remove that failed: the engine is removing it (docker's
        # `--rm` racing ours); the caller waits for its removal event
        log.debug("`%s %s` failed: %s", self.engine.name, " ".join(args), proc.stderr.strip())
        return "in-progress"

    def pull(
        self,
        image: str,
        listener: PullListener | None,
        timeout: float,
        auth: RegistryAuth | None = None,
        auth_dir: str | None = None,
    ) -> None:
        """`<engine> pull IMAGE`; with `auth` first `<engine> login` into a private auth
        store under `auth_dir` that the pull uses and that is removed afterwards
        (registry_auth.logged_in: RegistryLoginError when refused)."""
        if auth is None:
            self._pull(image, listener, timeout)
            return
        # base64 and the auth files: only a pull with credentials needs them
        from containerrunner.isolation.registry_auth import logged_in

        with logged_in(self.engine, auth, auth_dir) as login:
            self._pull(image, listener, timeout, login.global_args, login.pull_args)

    def _pull(
        self,
        image: str,
        listener: PullListener | None,
        timeout: float,
        global_args: Sequence[str] = (),
        pull_args: Sequence[str] = (),
    ) -> None:
        """`<engine> [global_args] pull [pull_args] IMAGE`, each line of its output (stdout
        and stderr, merged) to `listener` as it comes; CommandError with the output's tail
        when it fails, EngineTimeoutError (the pull killed) after `timeout` s."""
        args = [*global_args, "pull", *pull_args, image]
        argv = self.engine.command(*args)
        reader = PullReader(image, self.via)
        tail: deque[str] = deque(maxlen=40)
        try:
            proc = subprocess.Popen(
                argv,
                env=self.engine.client_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise cannot_start(self.engine, argv, exc) from exc
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            with proc.stdout:
                for line in proc.stdout:
                    tail.append(line)
                    got = reader.line(line)
                    if got is not None and listener is not None:
                        listener(got)
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if expired.is_set():
            raise not_finished(argv, timeout)
        if rc != 0:
            raise CommandError(argv, rc, "".join(tail)[-2000:])
        if listener is not None:
            listener(reader.done())
