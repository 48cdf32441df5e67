"""The podman engine through podman-py, over podman's REST API (libpod endpoints).

podman-py's low-level `APIClient` (`PodmanClient(...).api`) is used: the libpod documents are
what `podman inspect` prints. Its errors are typed: `NotFound` (404), `APIError` with the
status code, or with no response at all when the socket cannot be reached (Unreachable here).
Where the service is comes from `podman_service.endpoint()`.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from typing import Any

import podman
import podman.api.http_utils
import podman.errors
import requests.exceptions

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import EngineError, EngineTimeoutError, PullError, RegistryLoginError
from containerrunner.isolation.client_types import (
    ContainerInfo,
    ImageInfo,
    Removal,
    Unreachable,
    container_info,
    image_info,
)
from containerrunner.isolation.http_status import BROKEN, CONFLICT, NOT_MODIFIED
from containerrunner.isolation.pulls import PullListener, PullReader, PullStreamError
from containerrunner.isolation.registry_auth import auth_file_credentials


class PodmanApi:
    """A Backend over a podman API service at `url`; see the module docstring."""

    via = "the podman API"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._timeout = timeout
        self._api: Any = podman.PodmanClient(base_url=url, timeout=timeout).api

    def _request(
        self,
        method: str,
        what: str,
        path: str,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`method path?params`; the response, raised for an error status (NotFound, APIError
        with the status) except 404 (returned: the caller says what it means)."""
        try:
            response = getattr(self._api, method)(
                path, params=params, timeout=timeout or self._timeout
            )
        except podman.errors.APIError as exc:  # no response: the socket is not there
            cause = exc.__cause__
            if isinstance(cause, requests.exceptions.Timeout):
                raise EngineTimeoutError(f"podman API: {what} did not answer in time") from exc
            raise Unreachable(f"podman API at {self.url}: {what}: {cause or exc}") from exc
        return response

    def _check(self, response: Any, what: str) -> None:
        try:
            response.raise_for_status()
        except podman.errors.APIError as exc:
            raise EngineError(f"podman {what} failed: {exc.explanation or exc}") from exc

    def version(self) -> str:
        response = self._request("get", "version", "/version")
        self._check(response, "version")
        return str(response.json()["Version"])

    def image(self, ref: str, timeout: float | None = None) -> ImageInfo | None:
        what = f"image inspect {ref}"
        path = f"/images/{urllib.parse.quote_plus(ref)}/json"
        response = self._request("get", what, path, timeout=timeout)
        if response.status_code == 404:
            return None
        self._check(response, what)
        return image_info(response.json())

    def containers(self, label: str) -> list[ContainerInfo]:
        filters = json.dumps({"label": [label]})
        response = self._request(
            "get", "container list", "/containers/json", {"all": "true", "filters": filters}
        )
        self._check(response, "container list")
        return [container_info(entry) for entry in response.json()]

    def inspect(self, name: str) -> dict[str, Any] | None:
        response = self._request("get", f"inspect {name}", f"/containers/{name}/json")
        if response.status_code == 404:
            return None
        self._check(response, f"inspect {name}")
        return dict(response.json())

    def stop(self, name: str, grace: int) -> bool:
        response = self._request(
            "post",
            f"stop {name}",
            f"/containers/{name}/stop",
            {"timeout": grace},
            timeout=self._timeout + math.ceil(grace),
        )
        if response.status_code == 404:
            return False
        if response.status_code != NOT_MODIFIED:  # 304: stopped already
            self._check(response, f"stop {name}")
        return True

    def kill(self, name: str, signal: str) -> bool:
        response = self._request(
            "post", f"kill {name}", f"/containers/{name}/kill", {"signal": signal}
        )
        if response.status_code in (404, CONFLICT):  # gone, or not running
            return False
        self._check(response, f"kill {name}")
        return True

    def remove(self, name: str) -> Removal:
        # timeout=0: kill at once (podman's force remove otherwise waits the stop timeout)
        response = self._request(
            "delete", f"rm {name}", f"/containers/{name}", {"force": "true", "timeout": 0}
        )
        if response.status_code == 404:
            return "gone"
        if response.status_code == CONFLICT:
            return "in-progress"
        self._check(response, f"rm {name}")
        for report in _reports(response):
            if report.get("Err"):
                raise EngineError(f"podman rm {name} failed: {report['Err']}")
        return "removed"

    def login(self, auth: RegistryAuth) -> None:
        """Check `auth` with the service (the compat `/auth`, which logs in to the registry;
        libpod has none): RegistryLoginError naming the registry when refused."""
        body = {"username": auth.username, "password": auth.password, "serveraddress": auth.host}
        try:
            response = self._api.post(
                "/auth",
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
                compatible=True,
            )
        except podman.errors.APIError as exc:  # no response: the socket is not there
            raise Unreachable(f"podman API at {self.url}: login: {exc.__cause__ or exc}") from exc
        if response.status_code != 200:
            detail = _message(response).replace(auth.password, "***")
            raise RegistryLoginError(auth.host, "podman", detail, self.via)

    def pull(
        self,
        image: str,
        listener: PullListener | None,
        timeout: float,
        auth: RegistryAuth | None = None,
        auth_dir: str | None = None,
    ) -> None:
        """Pull `image` through libpod's `/images/pull` as a stream, each step to
        `listener`; PullError when podman refuses it (an error status, or an error object
        in the 200 stream). `timeout` is checked between steps (each read has the client's).
        With `auth`: `login` first, then the credentials go in the pull's X-Registry-Auth
        header (in memory; `auth_dir` is the CLI's and unused here); else what
        REGISTRY_AUTH_FILE gives for the image's registry (its credHelpers entry's helper,
        or its auths entry: registry_auth.auth_file_credentials), if anything."""
        del auth_dir
        reader = PullReader(image, self.via)
        deadline = time.monotonic() + timeout
        what = f"pull {image}"
        if auth is not None:
            self.login(auth)
            credentials: dict[str, str] | None = {
                "username": auth.username,
                "password": auth.password,
            }
        else:
            credentials = auth_file_credentials(image, "podman", self.via)
        headers = {}
        if credentials is not None:
            header = podman.api.http_utils.encode_auth_header(credentials)
            headers["X-Registry-Auth"] = header.decode()
        try:
            response = self._api.post(
                "/images/pull",
                params={"reference": image},
                headers=headers,
                stream=True,
                timeout=self._timeout,
            )
        except podman.errors.APIError as exc:  # no response: the socket is not there
            cause = exc.__cause__
            if isinstance(cause, requests.exceptions.Timeout):
                raise EngineTimeoutError(f"podman API: {what} did not answer in time") from exc
            raise Unreachable(f"podman API at {self.url}: {what}: {cause or exc}") from exc
        try:
            if response.status_code >= 400:
                raise PullStreamError(_message(response))
            for line in response.iter_lines():
                piece = _decoded(line)
                got = reader.podman(piece) if piece is not None else None
                if got is not None and listener is not None:
                    listener(got)
                if got is not None and got.done:
                    return
                if time.monotonic() > deadline:
                    raise EngineTimeoutError(f"podman API: {what} took over {timeout:g} s")
        except requests.exceptions.Timeout as exc:
            raise EngineTimeoutError(f"podman API: {what} did not answer in time") from exc
        except BROKEN as exc:
            raise Unreachable(f"podman API at {self.url}: {what}: {exc}") from exc
        except PullStreamError as exc:
            raise PullError("podman", image, self.via, str(exc)) from exc
        finally:
            response.close()
        # the stream ended without podman's final `id` object: not pulled
        raise PullError("podman", image, self.via, "the pull stream ended without an image ID")


def _decoded(line: bytes | str) -> dict[str, Any] | None:
    try:
        piece = json.loads(line)
    except ValueError:
        return None
    return piece if isinstance(piece, dict) else None


def _message(response: Any) -> str:
    """An error response's message (libpod's `{"cause", "message", "response"}`)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"HTTP {response.status_code}"


def _reports(response: Any) -> list[dict[str, Any]]:
    """libpod's remove answers a list of `{Id, Err}` reports (an empty body on some versions)."""
    try:
        body = response.json()
    except ValueError:
        return []
    return [r for r in body if isinstance(r, dict)] if isinstance(body, list) else []
