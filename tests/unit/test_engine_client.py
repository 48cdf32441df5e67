"""The engine client (isolation/client.py) and its API backends, without an engine: the
docker SDK's and podman-py's own exception types, and recorded libpod responses."""

from __future__ import annotations

import json
import logging
from typing import Any

import docker.errors
import podman.errors
import pytest
import requests
import requests.exceptions
from podman.api.client import APIResponse

from containerrunner.errors import EngineError
from containerrunner.isolation import api_docker, client
from containerrunner.isolation.api_docker import DockerApi
from containerrunner.isolation.api_podman import PodmanApi
from containerrunner.isolation.client import EngineClient
from containerrunner.isolation.client_types import ImageInfo, Unreachable, container_info
from containerrunner.isolation.engine import Engine

IMAGE_ID = "7f60427e45654149bc1d708b263729f44f30ed4a17755a4af765be6919ed1a06"
DIGEST = "localhost/containerrunner-ee@sha256:" + "e4" * 32

# Recorded from podman 4.3.1's service (GET /libpod/images/{name}/json, trimmed).
PODMAN_IMAGE = {
    "Id": IMAGE_ID,
    "RepoDigests": [DIGEST],
    "Labels": {"containerrunner.recipe": "09d67cbae37064df"},
    "Config": {"Labels": {"containerrunner.recipe": "09d67cbae37064df"}},
}
# docker 20.10's GET /images/{name}/json (trimmed): labels under Config only.
DOCKER_IMAGE = {
    "Id": f"sha256:{IMAGE_ID}",
    "RepoDigests": [],
    "Config": {"Labels": {"containerrunner.recipe": "09d67cbae37064df"}},
}
# podman's GET /libpod/containers/json?all=true&filters={"label":["containerrunner"]}
PODMAN_LIST = [
    {
        "Id": "2a2e94",
        "Names": ["containerrunner_local"],
        "Labels": {"containerrunner": "1", "containerrunner.owner-pid": "5511"},
        "State": "running",
    }
]
NOT_FOUND = {"cause": "no such container", "message": "no container ... found", "response": 404}


def response(status: int, body: Any = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode() if body is not None else b""
    return resp


class RecordedLibpod:
    """Stands in for podman-py's APIClient: answers each (method, path) from a recording."""

    def __init__(self, answers: dict[tuple[str, str], requests.Response]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, Any]] = []

    def _answer(self, method: str, path: str, **kw: Any) -> APIResponse:
        self.calls.append((method, path, kw.get("params")))
        return APIResponse(self.answers[(method, path)])

    def get(self, path: str, **kw: Any) -> APIResponse:
        return self._answer("get", path, **kw)

    def post(self, path: str, **kw: Any) -> APIResponse:
        return self._answer("post", path, **kw)

    def delete(self, path: str, **kw: Any) -> APIResponse:
        return self._answer("delete", path, **kw)


def podman_api(answers: dict[tuple[str, str], requests.Response]) -> tuple[PodmanApi, Any]:
    api = PodmanApi("unix:///nonexistent/podman.sock", 5.0)
    fake = RecordedLibpod(answers)
    api._api = fake
    return api, fake


def test_podman_image_is_one_query_with_id_labels_and_digests() -> None:
    path = "/images/localhost%2Fcontainerrunner-ee%3Alatest/json"
    api, fake = podman_api({("get", path): response(200, PODMAN_IMAGE)})
    info = api.image("localhost/containerrunner-ee:latest")
    assert info == ImageInfo(
        id=f"sha256:{IMAGE_ID}",
        labels={"containerrunner.recipe": "09d67cbae37064df"},
        repo_digests=(DIGEST,),
    )
    assert len(fake.calls) == 1


def test_podman_absent_image_and_container_are_none() -> None:
    api, _ = podman_api(
        {
            ("get", "/images/x%3Ay/json"): response(404, NOT_FOUND),
            ("get", "/containers/c/json"): response(404, NOT_FOUND),
            ("delete", "/containers/c"): response(404, NOT_FOUND),
            ("post", "/containers/c/stop"): response(404, NOT_FOUND),
            ("post", "/containers/c/kill"): response(404, NOT_FOUND),
        }
    )
    assert api.image("x:y") is None
    assert api.inspect("c") is None
    assert api.remove("c") == "gone"
    assert api.stop("c", 3) is False
    assert api.kill("c", "KILL") is False


def test_podman_remove_kills_at_once_and_reads_the_reports() -> None:
    api, fake = podman_api({("delete", "/containers/c"): response(200, [{"Id": "c", "Err": None}])})
    assert api.remove("c") == "removed"
    assert fake.calls == [("delete", "/containers/c", {"force": "true", "timeout": 0})]
    api, _ = podman_api({("delete", "/containers/c"): response(200, [{"Id": "c", "Err": "busy"}])})
    with pytest.raises(EngineError, match="podman rm c failed: busy"):
        api.remove("c")


def test_podman_list_by_label() -> None:
    api, fake = podman_api({("get", "/containers/json"): response(200, PODMAN_LIST)})
    [found] = api.containers("containerrunner")
    assert (found.name, found.state, found.labels["containerrunner.owner-pid"]) == (
        "containerrunner_local",
        "running",
        "5511",
    )
    assert fake.calls[0][2] == {"all": "true", "filters": '{"label": ["containerrunner"]}'}


def test_podman_server_error_is_an_engine_error() -> None:
    body = {"cause": "oops", "message": "storage is broken", "response": 500}
    api, _ = podman_api({("get", "/images/x/json"): response(500, body)})
    with pytest.raises(EngineError, match="storage is broken"):
        api.image("x")


def test_podman_without_a_socket_is_unreachable() -> None:
    api = PodmanApi("unix:///nonexistent/podman.sock", 5.0)  # the real podman-py client
    with pytest.raises(Unreachable, match="nonexistent"):
        api.image("x")


class FakeDockerApi:
    """Stands in for docker.APIClient, raising the SDK's own exceptions."""

    def __init__(self, error: Exception | None = None, answer: Any = None) -> None:
        self.error, self.answer = error, answer
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            self.calls.append((name, args, kw))
            if self.error is not None:
                raise self.error
            return self.answer

        return call


def docker_api(monkeypatch: pytest.MonkeyPatch, fake: FakeDockerApi) -> DockerApi:
    class FromEnv:
        api = fake

    monkeypatch.setattr(api_docker.docker, "from_env", lambda **kw: FromEnv())
    return DockerApi(5.0)


def docker_error(cls: type[docker.errors.APIError], status: int) -> docker.errors.APIError:
    return cls("error", response=response(status), explanation="the daemon says no")


def test_docker_image_is_one_inspect(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDockerApi(answer=DOCKER_IMAGE)
    info = docker_api(monkeypatch, fake).image("localhost/containerrunner-ee:latest")
    assert info is not None and info.id == f"sha256:{IMAGE_ID}"
    assert info.labels == {"containerrunner.recipe": "09d67cbae37064df"}
    assert fake.calls == [("inspect_image", ("localhost/containerrunner-ee:latest",), {})]


def test_docker_not_found_and_conflict_come_from_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = docker_api(monkeypatch, FakeDockerApi(docker_error(docker.errors.NotFound, 404)))
    assert gone.image("x") is None
    assert gone.remove("c") == "gone"
    assert gone.stop("c", 1) is False
    busy = docker_api(monkeypatch, FakeDockerApi(docker_error(docker.errors.APIError, 409)))
    assert busy.remove("c") == "in-progress"
    broken = docker_api(monkeypatch, FakeDockerApi(docker_error(docker.errors.APIError, 500)))
    with pytest.raises(EngineError, match="the daemon says no"):
        broken.containers("containerrunner")


def test_docker_connection_errors_are_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    api = docker_api(monkeypatch, FakeDockerApi(requests.exceptions.ConnectionError("refused")))
    with pytest.raises(Unreachable):
        api.image("x")

    def no_daemon(**kw: Any) -> Any:
        raise docker.errors.DockerException("Error while fetching server API version")

    monkeypatch.setattr(api_docker.docker, "from_env", no_daemon)
    with pytest.raises(Unreachable, match="server API version"):
        DockerApi(5.0)


def test_container_info_reads_lists_and_inspect_documents() -> None:
    listed = container_info({"Id": "1", "Names": ["/a"], "Labels": {"k": "v"}, "State": "Exited"})
    inspected = container_info(
        {"Id": "1", "Name": "/a", "Config": {"Labels": {"k": "v"}}, "State": {"Status": "exited"}}
    )
    assert listed == inspected
    assert listed.name == "a" and listed.state == "exited"


class Scripted:
    """A Backend whose image() answers from a script: a value, or an exception to raise."""

    def __init__(self, via: str, *script: Any) -> None:
        self.via, self.script = via, list(script)

    def image(self, ref: str, timeout: float | None = None) -> Any:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


ENGINE = Engine(name="podman", executable="/nonexistent/podman")
INFO = ImageInfo(id="sha256:1")


def scripted_client(
    monkeypatch: pytest.MonkeyPatch, connects: list[Any], cli: Scripted
) -> EngineClient:
    def connect(engine: Engine) -> Any:
        step = connects.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    monkeypatch.setattr(client, "_connect", connect)
    engine_client = EngineClient(ENGINE, use_api=True)
    engine_client.cli = cli  # type: ignore[assignment]
    return engine_client


def test_a_lost_api_is_connected_again_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = Scripted("the podman API", INFO, Unreachable("connection refused"))
    second = Scripted("the podman API", INFO)
    c = scripted_client(monkeypatch, [first, second], Scripted("the CLI"))
    with caplog.at_level(logging.DEBUG, logger="containerrunner.isolation.client"):
        assert c.image("x") == INFO
        assert c.image("x") == INFO
    assert c.last_via == "the podman API"
    assert "reconnected: the API answers again" in caplog.text


def test_no_api_falls_back_to_the_cli_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lost = Scripted("the podman API", Unreachable("connection refused"))
    cli = Scripted("the CLI", INFO, None)
    connects = [lost, Unreachable("no podman API service could be found or started")]
    c = scripted_client(monkeypatch, connects, cli)
    with caplog.at_level(logging.DEBUG, logger="containerrunner.isolation.client"):
        assert c.image("x") == INFO
        assert c.last_via == "the CLI"
        assert c._backend(reconnect=False) is None
    assert caplog.text.count("using the podman CLI") == 1


def test_cli_only_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(client.API_VARIABLE, "cli")
    assert not client.api_wanted()
    monkeypatch.setenv(client.API_VARIABLE, "auto")
    assert client.api_wanted()


def test_podman_errors_are_the_librarys_types() -> None:
    # what the backends rely on: NotFound is an APIError with the status of its response
    err = podman.errors.NotFound("x", response=response(404))
    assert isinstance(err, podman.errors.APIError) and err.status_code == 404


def test_a_changed_docker_host_gets_a_client_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    docker_engine = Engine(name="docker", executable="/nonexistent/docker")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    default = client.client_for(docker_engine)
    assert client.client_for(docker_engine) is default
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/other/docker.sock")
    assert client.client_for(docker_engine) is not default


def test_a_jobs_image_query_connects_not_but_uses_a_connected_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a job's start (connect=False) does not pay the library's import or podman's service
    # start: the CLI answers until something else (cleanup, the reaper) has connected
    api = Scripted("the podman API", INFO, INFO)
    connects: list[Any] = [api]
    c = scripted_client(monkeypatch, connects, Scripted("the CLI", INFO))
    assert c.image("x", connect=False) == INFO
    assert c.last_via == "the CLI" and connects == [api] and c.connected() is None
    assert c.image("x") == INFO  # connects
    assert c.last_via == "the podman API" and connects == []
    assert c.image("x", connect=False) == INFO
    assert c.last_via == "the podman API" and c.connected() is api
