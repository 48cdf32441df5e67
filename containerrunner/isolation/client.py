"""One engine client per engine: its library over the API where it can be had, the CLI else.

`client_for(engine)` is this process's client of that engine (made once, thread-safe). Each
call goes to the API backend (`api_docker.DockerApi`: docker SDK, `DOCKER_HOST` or the default
socket; `api_podman.PodmanApi`: podman-py, at the service `podman_service.endpoint()` finds or
starts). When the API cannot be reached the client connects again once (for podman: finds
the service again, restarting this process's private one when it was that one that ended)
and says so at debug level; when that fails too it falls back to the CLI for that call and
the rest of the process, said once at debug level. The podman and docker libraries are
imported only when first needed (a few hundred ms each), and nowhere outside isolation/.

`CONTAINERRUNNER_ENGINE_API=cli` in the environment keeps every call on the CLI.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.isolation.cli_client import CliBackend
from containerrunner.isolation.client_types import (
    Backend,
    ContainerInfo,
    ImageInfo,
    Removal,
    Unreachable,
)
from containerrunner.isolation.engine import Engine, current_endpoint, engine_endpoint
from containerrunner.isolation.pulls import PullListener

log = logging.getLogger(__name__)

API_VARIABLE = "CONTAINERRUNNER_ENGINE_API"
CALL_TIMEOUT = 60.0

T = TypeVar("T")


def api_wanted() -> bool:
    """False when the environment asks for the CLI only (`CONTAINERRUNNER_ENGINE_API=cli`)."""
    return os.environ.get(API_VARIABLE, "auto").strip().lower() != "cli"


def _connect(engine: Engine) -> Backend:
    """A new API backend for `engine`; Unreachable when there is no API to be had."""
    if engine.name == "docker":
        from containerrunner.isolation.api_docker import DockerApi

        return DockerApi(CALL_TIMEOUT)
    from containerrunner.isolation import podman_service
    from containerrunner.isolation.api_podman import PodmanApi

    found = podman_service.endpoint(engine.executable)
    if found is None:
        raise Unreachable("no podman API service could be found or started")
    url, where = found
    log.debug("podman API: %s at %s", where, url)
    return PodmanApi(url, CALL_TIMEOUT)


class EngineClient:
    """The engine's questions and cleanup actions; see the module docstring."""

    def __init__(self, engine: Engine, use_api: bool = True) -> None:
        self.engine = engine
        self.cli = CliBackend(engine, CALL_TIMEOUT)
        self._use_api = use_api
        self._api: Backend | None = None
        self._lock = threading.Lock()
        self._fallback_said = False
        #: what answered the last call: the API's name or "the CLI" (for tests and logs)
        self.last_via = ""

    def _backend(self, reconnect: bool) -> Backend | None:
        with self._lock:
            if not self._use_api:
                return None
            if self._api is None or reconnect:
                self._api = None
                try:
                    self._api = _connect(self.engine)
                except Unreachable as exc:
                    # no API to be had: the CLI from now on (not a connect attempt per call)
                    self._use_api = False
                    self._say_fallback(str(exc))
                    return None
            return self._api

    def _say_fallback(self, reason: str) -> None:
        if not self._fallback_said:
            self._fallback_said = True
            log.debug("%s: %s; using the %s CLI", self.engine.name, reason, self.engine.name)

    def connected(self) -> Backend | None:
        """The API backend when this process has connected to it already, else None."""
        with self._lock:
            return self._api if self._use_api else None

    def _call(self, method: Callable[[Backend], T], connect: bool = True) -> T:
        """`method` on the API (connecting first unless `connect` is False: then the API only
        when connected already), else on the CLI."""
        api = self._backend(reconnect=False) if connect else self.connected()
        if api is not None:
            try:
                return self._answer(api, method)
            except Unreachable as exc:
                log.debug("%s: %s; connecting again", self.engine.name, exc)
                api = self._backend(reconnect=True)
                if api is not None:
                    try:
                        result = self._answer(api, method)
                    except Unreachable as again:
                        self._say_fallback(f"{again} (after connecting again)")
                    else:
                        log.debug("%s: reconnected: the API answers again", self.engine.name)
                        return result
            log.debug("%s: this call goes through the CLI", self.engine.name)
        return self._answer(self.cli, method)

    def _answer(self, backend: Backend, method: Callable[[Backend], T]) -> T:
        result = method(backend)
        self.last_via = backend.via
        return result

    def version(self) -> str:
        """The engine's (server's) version."""
        return self._call(lambda b: b.version())

    def image(
        self, ref: str, timeout: float | None = None, connect: bool = True
    ) -> ImageInfo | None:
        """The local image `ref` (ID, labels, RepoDigests) in one query; None when absent.
        EngineError when the engine does not answer, EngineTimeoutError after `timeout` s
        (the podman API and the CLI; the docker SDK's calls have the client's timeout).
        `connect=False`: through the API only when connected already (a job's start)."""
        return self._call(lambda b: b.image(ref, timeout), connect)

    def containers(self, label: str) -> list[ContainerInfo]:
        """The containers (running or not) carrying label `label`."""
        return self._call(lambda b: b.containers(label))

    def inspect(self, name: str) -> dict[str, Any] | None:
        """Container `name`'s inspect document; None when there is none."""
        return self._call(lambda b: b.inspect(name))

    def stop(self, name: str, grace: int) -> bool:
        """SIGTERM, SIGKILL after `grace` s; False when there is no such container."""
        return self._call(lambda b: b.stop(name, grace))

    def kill(self, name: str, signal: str = "KILL") -> bool:
        """Send `signal`; False when the container is gone or not running."""
        return self._call(lambda b: b.kill(name, signal))

    def remove(self, name: str) -> Removal:
        """Kill and remove container `name` at once."""
        return self._call(lambda b: b.remove(name))

    def pull(
        self,
        image: str,
        listener: PullListener | None,
        timeout: float,
        auth: RegistryAuth | None = None,
        auth_dir: str | None = None,
    ) -> None:
        """Pull `image`, each step the engine reports to `listener` (PullProgress): through
        the API when this process is connected to it already (its progress stream), else
        `<engine> pull` (its output lines). With `auth` (container_auth_data) the API logs in
        first and pulls with the credentials in memory; the CLI logs in to a private auth
        store under `auth_dir`, removed afterwards. Podman with `verify_ssl=False` takes the
        CLI (`--tls-verify=false` for the login too). CommandError (PullError from the API)
        when the pull fails, RegistryLoginError when the registry refuses the login."""
        if auth is not None and not auth.verify_ssl and self.engine.name == "podman":
            self.cli.pull(image, listener, timeout, auth, auth_dir)
            self.last_via = self.cli.via
        else:
            self._call(lambda b: b.pull(image, listener, timeout, auth, auth_dir), connect=False)
        log.debug("%s: pulled %s through %s", self.engine.name, image, self.last_via)


_clients: dict[tuple[Engine, str], EngineClient] = {}
_clients_lock = threading.Lock()


def client_for(engine: Engine) -> EngineClient:
    """This process's client of `engine` where the environment points it now (one per Engine
    value and DOCKER_HOST / CONTAINER_HOST: a changed variable gets a client of its own)."""
    key = (engine, engine_endpoint(engine.name))
    # an Engine bound to another endpoint than this process's (a dead owner's, see
    # tempdirs): the CLI, which run_engine points there (Engine.client_env)
    elsewhere = engine.endpoint is not None and engine.endpoint != current_endpoint(engine.name)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = EngineClient(engine, use_api=api_wanted() and not elsewhere)
        return client


def forget_clients() -> None:
    """Drop the clients made so far (tests: a changed environment)."""
    with _clients_lock:
        _clients.clear()
