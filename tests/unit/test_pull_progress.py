"""Pull progress (isolation/pulls.py and the API backends' pull) from recorded pull streams:
docker 20.10's `/images/create` and podman 4.3.1's libpod `/images/pull`, served over HTTP on
127.0.0.1 to the real docker SDK and podman-py clients; the CLI displays of the items."""

from __future__ import annotations

import http.server
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from containerrunner.cli.progress import JsonDisplay, LiveDisplay, PlainDisplay, pull_line
from containerrunner.errors import CommandError, PullError
from containerrunner.isolation import api_podman
from containerrunner.isolation.api_docker import DockerApi
from containerrunner.isolation.api_podman import PodmanApi
from containerrunner.isolation.pulls import PullReader, PullStreamError
from containerrunner.progress import PullProgress

RECORDED = Path(__file__).parent / "fixtures" / "pulls"
IMAGE = "127.0.0.1:50429/cr-test/tiny:63068756"
DOCKER_VERSION = {"ApiVersion": "1.41", "Version": "20.10.24+dfsg1", "MinAPIVersion": "1.12"}


def recorded(name: str) -> list[bytes]:
    return [line + b"\n" for line in (RECORDED / name).read_bytes().splitlines()]


class Recording(http.server.BaseHTTPRequestHandler):
    """Answers GET .../version with DOCKER_VERSION, a POST with the server's `stream`
    (chunked, one recorded line per chunk, as the engines send them) and `status`, or the
    (status, stream) of the first `answers` key in its path."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(DOCKER_VERSION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.path, dict(self.headers)))
        self.server.bodies.append(body)
        status, stream = self.server.status, self.server.stream
        for part, answer in self.server.answers.items():
            if part in self.path:
                status, stream = answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in stream:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class RecordingServer(http.server.ThreadingHTTPServer):
    """What Recording answers, and the requests it saw (path, headers; bodies)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Recording)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        self.answers: dict[str, tuple[int, list[bytes]]] = {}
        self.stream: list[bytes] = []
        self.status = 200


@pytest.fixture
def engine_http() -> Iterator[Any]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: Any) -> str:
    return f"tcp://127.0.0.1:{server.server_address[1]}"


def docker_api(server: Any, monkeypatch: pytest.MonkeyPatch) -> DockerApi:
    monkeypatch.setenv("DOCKER_HOST", url(server))
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    return DockerApi(10.0)


def test_docker_pull_stream_gives_layers_bytes_and_a_final_done(
    engine_http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_http.stream = recorded("docker-20.10-images-create.jsonl")
    items: list[PullProgress] = []
    docker_api(engine_http, monkeypatch).pull(IMAGE, items.append, 60.0)
    path, headers = engine_http.requests[0]
    assert "/images/create?" in path and "fromImage=127.0.0.1%3A50429%2Fcr-test%2Ftiny" in path
    assert "tag=63068756" in path
    assert "X-Registry-Auth" not in headers  # no credentials through this path
    assert len(items) == 10  # nine recorded steps and the final item
    downloading = items[2]
    assert (downloading.status, downloading.layer) == ("Downloading", "cc0689e332ab")
    assert (downloading.current, downloading.total) == (14351, 1064396)
    assert downloading.fraction == pytest.approx(14351 / 1064396)
    assert items[3].current is None and items[3].fraction is None  # "Download complete": {}
    assert [i.done for i in items] == [False] * 9 + [True]
    assert items[-1].status.startswith("Status: Downloaded newer image")
    assert {i.via for i in items} == {"the docker API"} and {i.image for i in items} == {IMAGE}


def test_docker_error_in_the_stream_is_a_pull_error(
    engine_http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker's jsonmessage error form (an error after the pull began, e.g. a broken layer)
    engine_http.stream = [
        *recorded("docker-20.10-images-create.jsonl")[:3],
        b'{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n',
    ]
    items: list[PullProgress] = []
    with pytest.raises(PullError) as info:
        docker_api(engine_http, monkeypatch).pull(IMAGE, items.append, 60.0)
    assert isinstance(info.value, CommandError)
    assert IMAGE in str(info.value) and "unexpected EOF" in str(info.value)
    assert len(items) == 3 and not any(i.done for i in items)


def test_docker_refused_pull_is_a_pull_error(
    engine_http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker 20.10 refuses an unauthenticated pull before streaming: HTTP 500, a message
    engine_http.status = 500
    engine_http.stream = [b'{"message":"unauthorized: authentication required"}\n']
    with pytest.raises(PullError, match="unauthorized: authentication required"):
        docker_api(engine_http, monkeypatch).pull(IMAGE, None, 60.0)


def podman_api(server: Any) -> PodmanApi:
    return PodmanApi(f"http://127.0.0.1:{server.server_address[1]}", 10.0)


def test_podman_pull_stream_gives_its_lines_blobs_and_the_image_id(engine_http: Any) -> None:
    engine_http.stream = recorded("podman-4.3-images-pull.jsonl")
    items: list[PullProgress] = []
    podman_api(engine_http).pull(IMAGE, items.append, 60.0)
    path, _ = engine_http.requests[0]
    assert "/libpod/images/pull?reference=127.0.0.1%3A50429%2Fcr-test%2Ftiny" in path
    assert [i.status for i in items[:2]] == [
        "Trying to pull 127.0.0.1:50429/cr-test/tiny:778e762b...",
        "Getting image source signatures",
    ]
    assert items[2].layer.startswith("1b2707fc8ff5") and items[3].layer.startswith("641851aa")
    assert all(i.current is None and i.total is None for i in items)  # podman 4: no bytes
    assert [i.done for i in items] == [False] * 6 + [True]
    assert (
        items[-1].status
        == "pulled " + "641851aaad0b50321879073b43ba579ef69c349e74f173cc9fd293485055aa92"
    )


def test_podman_error_in_the_200_stream_is_a_pull_error(engine_http: Any) -> None:
    engine_http.stream = recorded("podman-4.3-images-pull-unauthorized.jsonl")
    items: list[PullProgress] = []
    with pytest.raises(PullError, match="unauthorized: authentication required") as info:
        podman_api(engine_http).pull(IMAGE, items.append, 60.0)
    assert info.value.via == "the podman API"
    assert len(items) == 1 and not items[0].done


def test_podman_stream_without_an_image_id_is_not_a_pull(engine_http: Any) -> None:
    engine_http.stream = recorded("podman-4.3-images-pull.jsonl")[:-1]
    with pytest.raises(PullError, match="without an image ID"):
        podman_api(engine_http).pull(IMAGE, None, 60.0)


def test_cli_lines_of_both_engines() -> None:
    reader = PullReader(IMAGE, "the CLI")
    docker_line = reader.line("cc0689e332ab: Pull complete\n")
    assert docker_line is not None
    assert (docker_line.layer, docker_line.status) == ("cc0689e332ab", "Pull complete")
    podman_line = reader.line("Copying blob sha256:" + "1b" * 32 + "\n")
    assert podman_line is not None and podman_line.layer == "1b" * 32
    assert reader.line("   \n") is None
    with pytest.raises(PullStreamError):
        reader.podman({"error": "manifest unknown"})


def item(**kw: Any) -> PullProgress:
    fields: dict[str, Any] = {"image": IMAGE, "status": "Downloading", "layer": "cc0689e332ab"}
    return PullProgress(**{**fields, **kw})


def test_plain_display_prints_a_line_per_step_not_per_byte_count() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = PlainDisplay(out, err)
    display.pull(item(status="Pulling fs layer"))
    display.pull(item(current=1, total=1064396))
    display.pull(item(current=500000, total=1064396))  # same step: no new line
    display.pull(item(status="Pull complete"))
    display.pull(item(status="Status: Downloaded newer image", layer="", done=True))
    lines = err.getvalue().splitlines()
    assert lines == [
        f"pull {IMAGE}: cc0689e332ab Pulling fs layer",
        f"pull {IMAGE}: cc0689e332ab Downloading 1B/1.1MB",
        f"pull {IMAGE}: cc0689e332ab Pull complete",
        f"pull {IMAGE}: Status: Downloaded newer image",
    ]
    assert out.getvalue() == ""  # stdout keeps the job's result lines only


def test_json_display_writes_one_item_per_line() -> None:
    out = io.StringIO()
    JsonDisplay(out).pull(item(current=14351, total=1064396, via="the docker API"))
    line = json.loads(out.getvalue())
    assert line["event"] == "containerrunner_image_pull"
    assert line["event_data"]["current"] == 14351 and line["event_data"]["total"] == 1064396
    assert line["event_data"]["image"] == IMAGE and line["event_data"]["done"] is False


def test_live_display_shows_the_pull_with_a_bar_until_it_is_done() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    display = LiveDisplay(console)
    display.pull(item(current=532198, total=1064396))
    console.print(display.render())
    shown = out.getvalue()
    assert pull_line(display.last_pull) in shown  # type: ignore[arg-type]
    assert "532.2kB/1.1MB" in shown and "━" in shown  # the bar
    display.pull(item(status="done", done=True))
    out.truncate(0)
    out.seek(0)
    console.print(display.render())
    assert "pull " not in out.getvalue()


def test_podman_api_pull_sends_the_clis_auth_file_credentials(
    engine_http: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REGISTRY_AUTH_FILE (which the podman service does not read): the entry for the
    image's registry goes in X-Registry-Auth; the longest matching key wins."""
    import base64

    def entry(user: str, password: str) -> dict[str, str]:
        return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}

    auth_file = tmp_path / "auth.json"
    auths = {
        "127.0.0.1:50429": entry("crtest", "s3cret:with-colon"),
        "127.0.0.1:50429/cr-test/tiny": entry("narrow", "pw"),
        "127.0.0.1:5": entry("other", "pw"),
    }
    auth_file.write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    assert api_podman.auth_file_credentials("127.0.0.1:50429/cr-test/other:1") == {
        "username": "crtest",
        "password": "s3cret:with-colon",
    }
    assert api_podman.auth_file_credentials("127.0.0.1:50429/cr-test/tiny@sha256:" + "a" * 64)
    assert api_podman.auth_file_credentials("quay.io/x/y:1") is None
    engine_http.stream = recorded("podman-4.3-images-pull.jsonl")
    podman_api(engine_http).pull(IMAGE, None, 60.0)
    _, headers = engine_http.requests[0]
    sent = json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"]))
    assert sent == {"username": "narrow", "password": "pw"}
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    podman_api(engine_http).pull(IMAGE, None, 60.0)
    assert "X-Registry-Auth" not in engine_http.requests[1][1]


def test_group_view_labels_each_jobs_pull_lines() -> None:
    from containerrunner.cli.grouprun import GroupView

    out, err = io.StringIO(), io.StringIO()
    view = GroupView(json_mode=False, quiet=True, stdout=out, stderr=err)
    view.handlers("podman/ee")["pull_progress_handler"](item(status="Pull complete"))
    assert err.getvalue() == f"[podman/ee] pull {IMAGE}: cc0689e332ab Pull complete\n"
    assert out.getvalue() == ""
    json_view = GroupView(json_mode=True, quiet=False, stdout=out, stderr=err)
    json_view.handlers("docker/ee")["pull_progress_handler"](item(done=True))
    assert json.loads(out.getvalue())["event_data"]["done"] is True


# Recorded: docker 20.10's and podman 4.3.1's (compat) POST /auth for a wrong password and
# a right one, against the test registry (htpasswd).
DOCKER_LOGIN_REFUSED = (
    500,
    [b'{"message":"login attempt to https://127.0.0.1:50429/v2/ failed with status: 401 '
     b'Unauthorized"}\n'],
)  # fmt: skip
PODMAN_LOGIN_REFUSED = (
    500,
    [b'{"message":"login attempt to 127.0.0.1:50429 failed with status: 401 Unauthorized"}\n'],
)
LOGIN_OK = (200, [b'{"IdentityToken":"","Status":"Login Succeeded"}\n'])


def auth(password: str = "s3cret") -> Any:
    from containerrunner.config.registry_auth import RegistryAuth

    return RegistryAuth.from_value(
        {"host": "127.0.0.1:50429", "username": "crtest", "password": password}
    )


@pytest.mark.parametrize("engine_name", ["docker", "podman"])
def test_api_login_refused_is_a_registry_login_error_and_nothing_is_pulled(
    engine_http: Any, monkeypatch: pytest.MonkeyPatch, engine_name: str
) -> None:
    from containerrunner.errors import RegistryLoginError

    engine_http.answers["/auth"] = (
        DOCKER_LOGIN_REFUSED if engine_name == "docker" else PODMAN_LOGIN_REFUSED
    )
    api = (
        docker_api(engine_http, monkeypatch) if engine_name == "docker" else podman_api(engine_http)
    )
    with pytest.raises(RegistryLoginError) as info:
        api.pull(IMAGE, None, 60.0, auth("wrong-marker"))
    assert "127.0.0.1:50429" in str(info.value) and "401 Unauthorized" in str(info.value)
    assert info.value.via == api.via and "wrong-marker" not in str(info.value)
    paths = [path for path, _ in engine_http.requests]
    assert len(paths) == 1 and "/auth" in paths[0]
    if engine_name == "podman":
        assert paths[0].startswith("/v1.")  # the compat endpoint: libpod has no /auth


@pytest.mark.parametrize("engine_name", ["docker", "podman"])
def test_api_pull_with_auth_logs_in_then_sends_the_credentials_in_memory(
    engine_http: Any, monkeypatch: pytest.MonkeyPatch, engine_name: str
) -> None:
    import base64

    engine_http.answers["/auth"] = LOGIN_OK
    if engine_name == "docker":
        engine_http.stream = recorded("docker-20.10-images-create.jsonl")
        api: Any = docker_api(engine_http, monkeypatch)
    else:
        engine_http.stream = recorded("podman-4.3-images-pull.jsonl")
        api = podman_api(engine_http)
    items: list[PullProgress] = []
    api.pull(IMAGE, items.append, 60.0, auth())
    assert items[-1].done
    (auth_path, _), (pull_path, headers) = engine_http.requests
    assert "/auth" in auth_path
    assert ("/images/pull" if engine_name == "podman" else "/images/create") in pull_path
    login = json.loads(engine_http.bodies[0])
    assert (login["username"], login["password"]) == ("crtest", "s3cret")
    sent = json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"] + "=="))
    assert (sent["username"], sent["password"]) == ("crtest", "s3cret")


def test_a_pull_progress_handler_that_is_not_callable_is_refused() -> None:
    import containerrunner
    from containerrunner.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="pull_progress_handler"):
        containerrunner.run_command(
            executable_cmd="true",
            pull_progress_handler="print",
        )


# ---------------------------------------------------------------- credential helpers
@pytest.fixture
def crtest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake `docker-credential-crtest` (tests/credhelper.py) first on PATH, answering
    crtest / a unique secret; returns its call log."""
    import uuid

    from tests import credhelper

    credhelper.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("CRTEST_USER", "helper-user")
    monkeypatch.setenv("CRTEST_SECRET", f"helper-{uuid.uuid4().hex}")
    monkeypatch.setenv("CRTEST_LOG", str(tmp_path / "helper.log"))
    monkeypatch.delenv("CRTEST_MODE", raising=False)
    return tmp_path / "helper.log"


def _sent_auth(headers: dict[str, str]) -> dict[str, str]:
    import base64

    return dict(json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"] + "==")))


def _podman_auth_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str) -> None:
    import base64

    entry = {"auth": base64.b64encode(b"file-user:file-pw").decode()}
    content = {"auths": {"127.0.0.1:50429": entry}, "credHelpers": {"127.0.0.1:50429": helper}}
    (tmp_path / "auth.json").write_text(json.dumps(content))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))


def test_podman_api_pull_asks_the_credhelpers_entrys_helper(
    engine_http: Any, crtest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REGISTRY_AUTH_FILE's credHelpers entry for the registry wins over its auths entry:
    `docker-credential-crtest get` with the registry on stdin, its answer in X-Registry-Auth."""
    _podman_auth_file(tmp_path, monkeypatch, "crtest")
    engine_http.stream = recorded("podman-4.3-images-pull.jsonl")
    items: list[PullProgress] = []
    podman_api(engine_http).pull(IMAGE, items.append, 60.0)
    assert items[-1].done
    _, headers = engine_http.requests[0]
    assert _sent_auth(headers) == {
        "username": "helper-user",
        "password": os.environ["CRTEST_SECRET"],
    }
    assert crtest.read_text() == "get|127.0.0.1:50429\n"  # argv: `get` only
    monkeypatch.setenv("CRTEST_MODE", "token")
    assert api_podman.auth_file_credentials(IMAGE) == {"identitytoken": os.environ["CRTEST_SECRET"]}
    monkeypatch.setenv("CRTEST_MODE", "none")  # the helper has nothing: an anonymous pull
    podman_api(engine_http).pull(IMAGE, None, 60.0)
    assert "X-Registry-Auth" not in engine_http.requests[1][1]
    assert api_podman.auth_file_credentials("quay.io/x/y:1") is None  # no entry: no helper
    assert len(crtest.read_text().splitlines()) == 3


@pytest.mark.parametrize("mode", ["fail", "missing"])
def test_podman_api_pull_with_a_broken_helper_names_it_and_the_registry(
    engine_http: Any,
    crtest: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    from containerrunner.errors import CredentialHelperError, RegistryLoginError

    _podman_auth_file(tmp_path, monkeypatch, "crtest" if mode == "fail" else "crmissing")
    monkeypatch.setenv("CRTEST_MODE", mode)
    engine_http.stream = recorded("podman-4.3-images-pull.jsonl")
    with pytest.raises(CredentialHelperError) as info:
        podman_api(engine_http).pull(IMAGE, None, 60.0)
    message = str(info.value)
    helper = "docker-credential-crtest" if mode == "fail" else "docker-credential-crmissing"
    assert helper in message and "'127.0.0.1:50429'" in message
    assert ("the vault is locked" if mode == "fail" else "not found on PATH") in message
    assert isinstance(info.value, RegistryLoginError) and info.value.host == "127.0.0.1:50429"
    assert info.value.helper == helper
    assert engine_http.requests == []  # nothing pulled


def _docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: object) -> None:
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps(content))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_docker_api_pull_gets_the_helpers_answer_through_the_sdk(
    engine_http: Any, crtest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """The docker SDK consults credHelpers/credsStore itself (docker.auth +
    docker.credentials): the helper's answer goes in X-Registry-Auth."""
    content: dict[str, object] = (
        {"credHelpers": {"127.0.0.1:50429": "crtest"}}
        if key == "credHelpers"
        else {"credsStore": "crtest"}
    )
    _docker_config(tmp_path, monkeypatch, content)
    engine_http.stream = recorded("docker-20.10-images-create.jsonl")
    docker_api(engine_http, monkeypatch).pull(IMAGE, None, 60.0)
    sent = _sent_auth(engine_http.requests[0][1])
    assert (sent["Username"], sent["Password"]) == ("helper-user", os.environ["CRTEST_SECRET"])
    assert crtest.read_text() == "get|127.0.0.1:50429\n"


@pytest.mark.parametrize("mode", ["fail", "missing"])
def test_docker_api_pull_with_a_broken_helper_names_it_and_the_registry(
    engine_http: Any,
    crtest: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    import warnings

    from containerrunner.errors import CredentialHelperError

    name = "crtest" if mode == "fail" else "crmissing"
    _docker_config(tmp_path, monkeypatch, {"credHelpers": {"127.0.0.1:50429": name}})
    monkeypatch.setenv("CRTEST_MODE", mode)
    engine_http.stream = recorded("docker-20.10-images-create.jsonl")
    api = docker_api(engine_http, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns of a helper not on PATH
        with pytest.raises(CredentialHelperError) as info:
            api.pull(IMAGE, None, 60.0)
    message = str(info.value)
    assert f"docker-credential-{name}" in message and "'127.0.0.1:50429'" in message
    assert ("the vault is locked" if mode == "fail" else "not installed") in message
    assert [p for p, _ in engine_http.requests if "/images/create" in p] == []
