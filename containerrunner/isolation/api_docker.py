"""The docker engine through the Docker SDK for Python (`docker.APIClient`, the low-level
client: the same documents `docker inspect` prints, no model objects).

The daemon is where `DOCKER_HOST` points, else the default socket (`docker.from_env()`).
Errors come from the SDK's typed exceptions: `NotFound` (404), `APIError` (its status code),
`requests`' connection errors (Unreachable).
"""

from __future__ import annotations

import math
import time
from typing import Any

import docker
import docker.auth
import docker.credentials
import docker.errors
import docker.utils
import requests.exceptions

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import (
    CredentialHelperError,
    EngineError,
    EngineTimeoutError,
    PullError,
    RegistryLoginError,
)
from containerrunner.isolation.client_types import (
    ContainerInfo,
    ImageInfo,
    Removal,
    Unreachable,
    container_info,
    image_info,
)
from containerrunner.isolation.http_status import BROKEN, CONFLICT
from containerrunner.isolation.pulls import PullListener, PullReader, PullStreamError
from containerrunner.isolation.registry_auth import HELPER_PREFIX


class DockerApi:
    """A Backend over the docker daemon's API; see the module docstring."""

    via = "the docker API"

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        try:
            # version="auto" (the default): one /version round trip, which also proves the
            # daemon answers.
            self._api: Any = docker.from_env(timeout=math.ceil(timeout)).api
        except docker.errors.DockerException as exc:
            raise Unreachable(f"docker API: {exc}") from exc

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except requests.exceptions.Timeout as exc:
            raise EngineTimeoutError(f"docker API: {what} did not answer in time") from exc
        except requests.exceptions.ConnectionError as exc:
            raise Unreachable(f"docker API: {what}: {exc}") from exc
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as exc:
            if exc.status_code == CONFLICT:
                raise
            raise EngineError(f"docker {what} failed: {exc.explanation or exc}") from exc

    def version(self) -> str:
        return str(self._call("version", self._api.version)["Version"])

    def image(self, ref: str, timeout: float | None = None) -> ImageInfo | None:
        # the SDK's calls take the client's timeout; a shorter one bounds the wait here
        del timeout
        try:
            return image_info(self._call(f"image inspect {ref}", self._api.inspect_image, ref))
        except docker.errors.NotFound:
            return None

    def containers(self, label: str) -> list[ContainerInfo]:
        found = self._call(
            "container list", self._api.containers, all=True, filters={"label": label}
        )
        return [container_info(entry) for entry in found]

    def inspect(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._call(f"inspect {name}", self._api.inspect_container, name))
        except docker.errors.NotFound:
            return None

    def stop(self, name: str, grace: int) -> bool:
        try:
            self._call(f"stop {name}", self._api.stop, name, timeout=grace)
        except docker.errors.NotFound:
            return False
        return True

    def kill(self, name: str, signal: str) -> bool:
        try:
            self._call(f"kill {name}", self._api.kill, name, signal=signal)
        except (docker.errors.NotFound, docker.errors.APIError):  # 409: not running
            return False
        return True

    def remove(self, name: str) -> Removal:
        try:
            self._call(f"rm {name}", self._api.remove_container, name, force=True)
        except docker.errors.NotFound:
            return "gone"
        except docker.errors.APIError:  # 409 only: "removal ... is already in progress"
            return "in-progress"
        return "removed"

    def login(self, auth: RegistryAuth) -> None:
        """Check `auth` with the daemon (`/auth`, which logs in to the registry):
        RegistryLoginError naming the registry when refused. Through a client of its own,
        discarded afterwards: the SDK's `login` keeps the credentials in its client, where
        every later pull of this process would use them."""
        try:
            version = self._api.api_version
            scratch = docker.from_env(version=version, timeout=math.ceil(self._timeout))
        except docker.errors.DockerException as exc:
            raise Unreachable(f"docker API: login: {exc}") from exc
        try:
            scratch.api.login(auth.username, auth.password, registry=auth.host, reauth=True)
        except BROKEN as exc:
            raise Unreachable(f"docker API: login to {auth.host}: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            raise RegistryLoginError(auth.host, "docker", "no answer in time", self.via) from exc
        except docker.errors.APIError as exc:
            detail = str(exc.explanation or exc).replace(auth.password, "***")
            raise RegistryLoginError(auth.host, "docker", detail, self.via) from exc
        finally:
            scratch.close()

    def _helper_error(self, repo: str, exc: Exception) -> CredentialHelperError:
        """The SDK's credential-store failure for `repo`'s registry, naming its helper."""
        registry, _ = docker.auth.resolve_repository_name(repo)
        try:
            config = docker.auth.load_config(credstore_env=self._api.credstore_env)
            helper = config.get_credential_store(registry) or "?"
        except docker.errors.DockerException:
            helper = "?"
        return CredentialHelperError(
            f"{HELPER_PREFIX}{helper}", registry, "docker", self.via, str(exc)
        )

    def pull(
        self,
        image: str,
        listener: PullListener | None,
        timeout: float,
        auth: RegistryAuth | None = None,
        auth_dir: str | None = None,
    ) -> None:
        """Pull `image` through `/images/create` as a stream, each step to `listener`;
        PullError when the daemon refuses it (404, 500, an error in the stream). `timeout`
        is checked between steps (each read has the client's timeout). With `auth`: `login`
        first, then the credentials go in the pull's X-Registry-Auth header (in memory;
        `auth_dir` is the CLI's and unused here); else the SDK sends those of the docker
        config, as the CLI does: its `credHelpers` entry for the registry, else `credsStore`,
        run as `docker-credential-NAME get` (the SDK's docker.credentials), else `auths`; a
        helper that is missing or fails is a CredentialHelperError naming it."""
        del auth_dir
        credentials = None
        if auth is not None:
            self.login(auth)
            credentials = {"username": auth.username, "password": auth.password}
        else:
            # the CLI reads the auth config (DOCKER_CONFIG, ~/.docker) on every pull; the SDK
            # once, when the client is made: read it again, so a login since then counts
            self._api.reload_config()
        reader = PullReader(image, self.via)
        repo, tag = docker.utils.parse_repository_tag(image)
        deadline = time.monotonic() + timeout
        try:
            stream = self._api.pull(
                repo, tag or "latest", stream=True, decode=True, auth_config=credentials
            )
            for piece in stream:
                got = reader.docker(piece) if isinstance(piece, dict) else None
                if got is not None and listener is not None:
                    listener(got)
                if time.monotonic() > deadline:
                    stream.close()
                    raise EngineTimeoutError(f"docker API: pull {image} took over {timeout:g} s")
        except requests.exceptions.Timeout as exc:
            raise EngineTimeoutError(f"docker API: pull {image} did not answer in time") from exc
        except BROKEN as exc:
            raise Unreachable(f"docker API: pull {image}: {exc}") from exc
        except PullStreamError as exc:
            raise PullError("docker", image, self.via, str(exc)) from exc
        except docker.errors.APIError as exc:  # NotFound (404) too
            raise PullError("docker", image, self.via, str(exc.explanation or exc)) from exc
        except docker.errors.DockerException as exc:
            if not isinstance(exc.__cause__, docker.credentials.StoreError):
                raise PullError("docker", image, self.via, str(exc)) from exc
            # the SDK found a credHelpers/credsStore entry for the registry and its helper
            # is missing or failed (docker.auth raises DockerException from the StoreError)
            raise self._helper_error(repo, exc) from exc
        if listener is not None:
            listener(reader.done())
