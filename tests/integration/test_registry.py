"""Pull policies against a real registry on 127.0.0.1 (tests/registry.py: docker-registry with
htpasswd auth and a self-signed certificate), on podman and docker."""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import containerrunner
from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import (
    CommandError,
    ImageNotFoundError,
    PullError,
    RegistryLoginError,
)
from containerrunner.isolation import client, podman_service
from containerrunner.isolation.engine import Engine
from containerrunner.isolation.images import (
    ensure_image,
    image_digest,
    pull_image,
    pull_progress_to,
)
from containerrunner.progress import Progress, PullProgress
from tests import credhelper
from tests import registry as reg
from tests.conftest import image_present

pytestmark = pytest.mark.integration

if reg.missing_tools() and os.environ.get("CONTAINERRUNNER_REQUIRE_ENGINES") != "1":
    pytest.skip(
        f"registry tests need {', '.join(reg.missing_tools())} "
        "(scripts/setup-engine installs them)",
        allow_module_level=True,
    )

PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[reg.Registry, subprocess.Popen[str]]]:
    yield from reg.running_registry(PASSWORD)


@pytest.fixture
def published(
    engine: Engine,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A small image pushed to the registry under a unique name, absent locally; the
    engine's default auth store is pointed (environment variable) at an empty dir of this
    test's own, so nothing is logged in."""
    server, _ = registry
    source = f"localhost/cr-eng12b-src:{uuid.uuid4().hex[:12]}"
    target = server.ref(f"cr-test/tiny:{uuid.uuid4().hex[:12]}")
    tar = reg.tiny_image_tar(tmp_path / "tiny.tar")
    subprocess.run(engine.command("import", str(tar), source), capture_output=True, check=True)
    try:
        reg.push(engine.command(), source, target, server)
    finally:
        subprocess.run(engine.command("rmi", source), capture_output=True, check=False)
    auth = tmp_path / "auth"
    auth.mkdir(mode=0o700)
    for key, value in reg.login_env(engine.name, auth).items():
        monkeypatch.setenv(key, value)
    assert not image_present(engine, target)
    try:
        yield target
    finally:
        subprocess.run(engine.command("rmi", "-f", target), capture_output=True, check=False)


@pytest.fixture
def pushed(
    engine: Engine, published: str, registry: tuple[reg.Registry, subprocess.Popen[str]]
) -> str:
    """`published`, with the engine logged in through the test's own auth store."""
    server, _ = registry
    login_opts = ["--username", server.username, "--password-stdin", server.host]
    subprocess.run(
        engine.command("login", *login_opts),
        input=server.password,
        capture_output=True,
        text=True,
        check=True,
    )
    return published


def test_missing_pulls_an_absent_image(engine: Engine, pushed: str) -> None:
    image_id = ensure_image(engine, pushed, "missing")
    assert image_id is not None
    assert image_digest(engine, pushed) == image_id


def test_always_pulls_an_absent_image(engine: Engine, pushed: str) -> None:
    assert ensure_image(engine, pushed, "always") is not None
    assert image_present(engine, pushed)


def test_never_refuses_an_absent_image(engine: Engine, pushed: str) -> None:
    with pytest.raises(ImageNotFoundError) as info:
        ensure_image(engine, pushed, "never")
    assert pushed in str(info.value)
    assert not image_present(engine, pushed)


def test_registry_down(
    engine: Engine,
    pushed: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    """With the registry gone: `missing`/`never` use the local copy, `always` fails, and an
    absent image under `missing` is ImageNotFoundError."""
    present_id = ensure_image(engine, pushed, "missing")
    server, _ = registry
    # A second registry name on a port nobody listens on: "down" without stopping the
    # module's registry for the other tests.
    down = pushed.replace(server.host, "127.0.0.1:9", 1)
    subprocess.run(engine.command("tag", pushed, down), capture_output=True, check=True)
    try:
        assert ensure_image(engine, down, "missing") == present_id
        assert ensure_image(engine, down, "never") == present_id
        with pytest.raises(CommandError) as info:
            ensure_image(engine, down, "always")
        assert "127.0.0.1:9" in str(info.value)
    finally:
        subprocess.run(engine.command("rmi", down), capture_output=True, check=False)
    with pytest.raises(ImageNotFoundError):
        ensure_image(engine, down, "missing")


def test_no_login_fails_the_pull(engine: Engine, published: str) -> None:
    """The registry really enforces its htpasswd: without a login the pull is refused."""
    with pytest.raises(ImageNotFoundError):
        ensure_image(engine, published, "missing")


def _assert_no_auth_store_left(runtime_parent: Path, tmp_path: Path) -> None:
    """The login's private auth store is gone, and the default store (login_env) is empty."""
    assert list(runtime_parent.iterdir()) == []
    assert list((tmp_path / "auth").iterdir()) == []


def _auth_data(server: reg.Registry, password: str) -> dict[str, object]:
    return {"host": server.host, "username": server.username, "password": password}


def _files_holding(marker: str, *roots: Path) -> list[str]:
    found = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    if not stat.S_ISREG(os.lstat(path).st_mode):  # FIFOs, sockets: never open
                        continue
                    with open(path, "rb") as fh:
                        if marker.encode() in fh.read():
                            found.append(path)
                except OSError:
                    continue
    return found


def test_container_auth_data_logs_in_for_the_pull(
    engine: Engine,
    published: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    """container_auth_data pulls from the auth-only registry with no prior login; the auth
    store is gone afterwards and the engine's default store was never written."""
    server, _ = registry
    runtime_parent = tmp_path / "runtime"
    runtime_parent.mkdir()
    auth = RegistryAuth.from_value(_auth_data(server, server.password))
    assert ensure_image(engine, published, "missing", auth=auth, auth_dir=str(runtime_parent))
    assert image_present(engine, published)
    _assert_no_auth_store_left(runtime_parent, tmp_path)


def test_wrong_password_names_the_registry_and_leaks_nothing(
    engine: Engine,
    published: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    """run() with a wrong container_auth_data password: a clear error naming the registry,
    the image not pulled, and the (marker) password in no file under the private data dir,
    the runtime dirs or the temp dir."""
    server, _ = registry
    marker = f"wrong-{uuid.uuid4().hex}"
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    with pytest.raises(RegistryLoginError) as info:
        containerrunner.run_command(
            executable_cmd="/bin/busybox",
            cmdline_args=["true"],
            private_data_dir=str(pdd),
            process_isolation=True,
            process_isolation_executable=engine.name,
            container_image=published,
            container_auth_data=_auth_data(server, marker),
            quiet=True,
        )
    assert server.host in str(info.value)
    assert marker not in str(info.value)
    assert not image_present(engine, published)
    assert _files_holding(marker, pdd, Path(tempfile.gettempdir())) == []


API = {"podman": "the podman API", "docker": "the docker API"}


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    """Engine clients made in this test only (connected or not as the test decides)."""
    client.forget_clients()
    yield
    client.forget_clients()


def _check_items(items: list[PullProgress], image: str, via: str) -> None:
    assert len(items) >= 2, items  # at least one step, then the final item
    assert all(isinstance(i, PullProgress) and i.image == image for i in items)
    assert {i.via for i in items} == {via}
    assert [i.done for i in items] == [False] * (len(items) - 1) + [True]


def test_a_pull_through_the_api_reports_progress(
    engine: Engine, pushed: str, fresh_clients: None
) -> None:
    engine_client = client.client_for(engine)
    engine_client.version()  # connected: the pull goes through the API
    items: list[PullProgress] = []
    assert ensure_image(engine, pushed, "always", listener=items.append) is not None
    _check_items(items, pushed, API[engine.name])
    assert engine_client.last_via == API[engine.name]
    assert image_present(engine, pushed)
    if engine.name == "docker":  # the daemon reports bytes per layer
        assert any(i.total and i.current for i in items)


def test_a_pull_through_the_cli_reports_its_lines(
    engine: Engine, pushed: str, fresh_clients: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(client.API_VARIABLE, "cli")
    items: list[PullProgress] = []
    assert ensure_image(engine, pushed, "missing", listener=items.append) is not None
    _check_items(items, pushed, "the CLI")
    assert image_present(engine, pushed)


def test_a_failed_api_pull_names_the_image(
    engine: Engine, published: str, fresh_clients: None
) -> None:
    """No login: the registry refuses the pull; through the API that is a PullError (a
    CommandError) naming the image, and ImageNotFoundError for an absent image."""
    client.client_for(engine).version()
    with pytest.raises(PullError) as info:
        pull_image(engine, published)
    assert published in str(info.value) and info.value.via == API[engine.name]
    with pytest.raises(ImageNotFoundError):
        ensure_image(engine, published, "missing")


def test_a_job_gets_pull_progress_then_runs(
    engine: Engine, pushed: str, fresh_clients: None, tmp_path: Path
) -> None:
    """run_command with pull="always": pull_progress_handler hears the pull (a final done
    item), progress_handler only ever gets Progress, and the job then runs."""
    pulls: list[PullProgress] = []
    progress: list[object] = []
    (tmp_path / "pdd").mkdir()
    out, _err, rc = containerrunner.run_command(
        executable_cmd="/bin/busybox",
        cmdline_args=["echo", "ran-after-pull"],
        private_data_dir=str(tmp_path / "pdd"),
        process_isolation=True,
        process_isolation_executable=engine.name,
        container_image=pushed,
        pull="always",
        pull_progress_handler=pulls.append,
        progress_handler=progress.append,
        quiet=True,
    )
    assert rc == 0 and "ran-after-pull" in out
    _check_items(pulls, pushed, "the CLI")  # a job's start does not connect to the API
    assert all(isinstance(p, Progress) for p in progress)


def test_a_job_under_missing_pulls_after_its_first_start_and_runs_once(
    engine: Engine, pushed: str, fresh_clients: None, tmp_path: Path
) -> None:
    """The optimistic start: an absent image under `missing` (the default): the engine
    refuses the first start (`--pull=never`), the job pulls (progress to the handler) and
    starts again; the refusal is in no output or artifact, the provenance has the ID."""
    pulls: list[PullProgress] = []
    statuses: list[str] = []
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    out, err, rc = containerrunner.run_command(
        executable_cmd="/bin/busybox",
        cmdline_args=["echo", "ran-after-pull"],
        private_data_dir=str(pdd),
        ident="pulled",
        process_isolation=True,
        process_isolation_executable=engine.name,
        container_image=pushed,
        pull="missing",
        pull_progress_handler=pulls.append,
        status_handler=lambda data, _config: statuses.append(data["status"]),
        quiet=True,
    )
    assert (out, err, rc) == ("ran-after-pull\n", "", 0)
    _check_items(pulls, pushed, "the CLI")
    assert statuses == ["starting", "running", "successful"]
    artifacts = pdd / "artifacts" / "pulled"
    assert (artifacts / "stdout").read_text() == "ran-after-pull\n"
    assert (artifacts / "stderr").read_text() == ""
    record = json.loads((artifacts / "provenance.json").read_text())
    assert record["image_id"] == image_digest(engine, pushed) is not None


def test_a_job_under_never_does_not_pull(engine: Engine, pushed: str, tmp_path: Path) -> None:
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    with pytest.raises(ImageNotFoundError, match=re.escape(pushed)):
        containerrunner.run_command(
            executable_cmd="/bin/busybox",
            cmdline_args=["true"],
            private_data_dir=str(pdd),
            process_isolation=True,
            process_isolation_executable=engine.name,
            container_image=pushed,
            pull="never",
            quiet=True,
        )
    assert not image_present(engine, pushed)
    assert not (pdd / "artifacts").exists()


@pytest.mark.parametrize("connected", [True, False], ids=["api", "cli"])
def test_container_auth_data_pull_reports_progress(
    engine: Engine,
    published: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
    fresh_clients: None,
    connected: bool,
) -> None:
    """container_auth_data with the API connected: logged in and pulled through the API,
    the credentials in memory; not connected: the CLI with its private auth store. Either
    way the steps are reported, the password is in none of them, and no auth store is left."""
    server, _ = registry
    runtime_parent = tmp_path / "runtime"
    runtime_parent.mkdir()
    if connected:
        client.client_for(engine).version()
    items: list[PullProgress] = []
    auth = RegistryAuth.from_value(_auth_data(server, server.password))
    with pull_progress_to(items.append):
        assert ensure_image(engine, published, "missing", auth=auth, auth_dir=str(runtime_parent))
    _check_items(items, published, API[engine.name] if connected else "the CLI")
    assert server.password not in repr(items)
    _assert_no_auth_store_left(runtime_parent, tmp_path)


def test_wrong_password_through_the_api_names_the_registry_and_leaks_nothing(
    engine: Engine,
    published: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
    fresh_clients: None,
) -> None:
    """The API's login (`/auth`) refuses a wrong password: RegistryLoginError naming the
    registry, nothing pulled, the (marker) password in no file under the test's dir or the
    temp dir."""
    server, _ = registry
    marker = f"wrong-{uuid.uuid4().hex}"
    client.client_for(engine).version()
    auth = RegistryAuth.from_value(_auth_data(server, marker))
    with pytest.raises(RegistryLoginError) as info:
        ensure_image(engine, published, "missing", auth=auth, auth_dir=str(tmp_path))
    assert server.host in str(info.value) and marker not in str(info.value)
    assert info.value.via == API[engine.name]
    assert not image_present(engine, published)
    assert _files_holding(marker, tmp_path, Path(tempfile.gettempdir())) == []


@pytest.mark.podman
@pytest.mark.parametrize("engine", ["podman"], indirect=True)
def test_a_pull_after_the_private_service_died_restarts_it_and_says_so(
    engine: Engine, pushed: str, fresh_clients: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The private podman service this test process started is killed mid-session: the next
    pull starts it again (a debug line says so) and goes through the API."""
    if os.environ.get("CONTAINER_HOST") or podman_service.unix_answers(
        podman_service.default_socket()
    ):
        pytest.skip("the host runs a podman service: no private one to stop")
    engine_client = client.client_for(engine)
    engine_client.version()
    first = podman_service.current_private()
    assert first is not None
    first.proc.kill()
    first.proc.wait()
    items: list[PullProgress] = []
    with caplog.at_level(logging.DEBUG, logger="containerrunner.isolation"):
        assert ensure_image(engine, pushed, "missing", listener=items.append) is not None
    second = podman_service.current_private()
    assert second is not None and second.proc.pid != first.proc.pid
    _check_items(items, pushed, "the podman API")
    assert f"the private podman service (pid {first.proc.pid}) ended" in caplog.text
    assert "reconnected: the API answers again" in caplog.text


def _cli_run(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`containerrunner run PDD -p site.yml OPTIONS...` (a one-play project), not on a TTY."""
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "project" / "site.yml").write_text("- hosts: localhost\n")
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", "run", str(pdd), "-p", "site.yml", *options],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_run_shows_the_pull_in_plain_lines(engine: Engine, pushed: str, tmp_path: Path) -> None:
    """`containerrunner run` not on a TTY: one stderr line per pull step (`pull IMAGE: ...`),
    then the job runs (the tiny image's stand-in ansible-playbook) and the status line."""
    proc = _cli_run(tmp_path, "--engine", engine.name, "--image", pushed, "--pull", "always")
    assert proc.returncode == 0, proc.stderr
    pull_lines = [line for line in proc.stderr.splitlines() if line.startswith(f"pull {pushed}: ")]
    assert len(pull_lines) >= 2, proc.stderr
    assert "successful (rc 0)" in proc.stdout
    assert not any(line.startswith("pull ") for line in proc.stdout.splitlines())


def test_cli_json_mode_has_pull_items(engine: Engine, pushed: str, tmp_path: Path) -> None:
    """`run --json`: each pull step is a JSON line (`containerrunner_image_pull`), the last
    one done, before the job's events."""
    proc = _cli_run(tmp_path, "-j", "--engine", engine.name, "--image", pushed)
    assert proc.returncode == 0, proc.stderr
    items = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    pulls = [i["event_data"] for i in items if i.get("event") == "containerrunner_image_pull"]
    assert len(pulls) >= 2 and pulls[-1]["done"] is True
    assert {p["image"] for p in pulls} == {pushed}


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "containerrunner", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )


def _on_a_pty(argv: list[str], cwd: Path | None = None) -> str:
    """What `argv` showed on a 250-column pty until it exited 0 (the ANSI controls taken out):
    the CLI's live view draws only on a terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "containerrunner", *argv],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "250"},
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the pty has closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=300) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))


def test_cli_run_on_a_tty_draws_the_pull(engine: Engine, pushed: str, tmp_path: Path) -> None:
    """`containerrunner run` on a pty: the live view draws the pull row (`pull IMAGE: ...`)
    while pulling, then the job runs to its status line."""
    pdd = tmp_path / "pdd"
    (pdd / "project").mkdir(parents=True)
    (pdd / "project" / "site.yml").write_text("- hosts: localhost\n")
    shown = _on_a_pty(
        ["run", str(pdd), "-p", "site.yml", "--engine", engine.name, "--image", pushed]
    )
    assert f"pull {pushed}: " in shown, shown[-3000:]
    assert "successful (rc 0)" in shown


def test_cli_exec_shows_the_pull_on_stderr(engine: Engine, pushed: str, tmp_path: Path) -> None:
    """`containerrunner exec` pulls the absent image first: its steps on stderr, the
    command's output alone on stdout."""
    proc = _cli(
        tmp_path, "exec", "--engine", engine.name, "--image", pushed,
        "--", "/bin/busybox", "echo", "exec-after-pull",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "exec-after-pull\n"
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith(f"pull {pushed}: ")]) >= 2


def test_a_session_start_reports_its_pull(engine: Engine, pushed: str, fresh_clients: None) -> None:
    """Session(pull="always", pull_progress_handler=...): the pull's steps and a final done
    item, then the session's container runs."""
    items: list[PullProgress] = []
    session = containerrunner.Session(
        image=pushed,
        engine=engine.name,
        mounts=[],
        pull="always",
        pull_progress_handler=items.append,
    )
    with session:
        assert session.running
    _check_items(items, pushed, "the CLI")


def test_an_api_pull_uses_a_login_made_after_the_client_connected(
    engine: Engine,
    published: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    fresh_clients: None,
    tmp_path: Path,
) -> None:
    """Connected first, `<engine> login` afterwards (into the test's auth store): the API
    pull uses that login, as `<engine> pull` would (docker: the SDK's config read again;
    podman: REGISTRY_AUTH_FILE's entry sent with the pull)."""
    server, _ = registry
    # an auth store that is not empty when the client connects (the SDK reads an empty one
    # again by itself): another registry's entry
    store = reg.login_env(engine.name, tmp_path / "auth")
    path = store.get("REGISTRY_AUTH_FILE") or os.path.join(store["DOCKER_CONFIG"], "config.json")
    other = {"auths": {"127.0.0.1:9": {"auth": base64.b64encode(b"someone:else").decode()}}}
    Path(path).write_text(json.dumps(other))
    engine_client = client.client_for(engine)
    engine_client.version()
    subprocess.run(
        engine.command("login", "--username", server.username, "--password-stdin", server.host),
        input=server.password,
        capture_output=True,
        text=True,
        check=True,
    )
    items: list[PullProgress] = []
    assert ensure_image(engine, published, "missing", listener=items.append) is not None
    _check_items(items, published, API[engine.name])


def test_cli_session_start_shows_the_pull_then_the_session_works(
    engine: Engine, pushed: str, tmp_path: Path
) -> None:
    """`session start --pull always` not on a TTY: the pull's steps on stderr (relayed from
    the holder daemon), the ID alone on stdout; a call runs in the session; stopped after."""
    ident = f"crpull-{uuid.uuid4().hex[:12]}"
    proc = _cli(
        tmp_path, "session", "start", "--engine", engine.name, "--image", pushed,
        "--pull", "always", "--mount", str(tmp_path), "-i", ident,
    )  # fmt: skip
    try:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"{ident}\n"
        pull_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"pull {pushed}: ")]
        assert len(pull_lines) >= 2, proc.stderr
        assert image_present(engine, pushed)
        call = _cli(tmp_path, "exec", "--session", ident, "--", "/bin/busybox", "echo", "warm")
        assert (call.returncode, call.stdout) == (0, "warm\n"), call.stderr
    finally:
        stopped = _cli(tmp_path, "session", "stop", ident)
    assert stopped.returncode == 0, stopped.stderr
    listed = subprocess.run(
        engine.command("ps", "-a", "--filter", f"label=containerrunner.ident={ident}", "-q"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == ""


def test_an_api_pull_asks_the_credential_helper_and_leaks_nothing(
    engine: Engine,
    published: str,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    fresh_clients: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a credHelpers entry for the registry (podman: in REGISTRY_AUTH_FILE; docker: in
    DOCKER_CONFIG's config.json), no password in any file: a job's API pull gets the
    credentials from `docker-credential-crtest` (tests/credhelper.py, answering from its
    environment), the job runs, and the password is in no file under the private data dir,
    the test's dirs or the temp dir."""
    server, _ = registry
    credhelper.install(tmp_path / "bin")
    log = tmp_path / "helper.log"
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("CRTEST_USER", server.username)
    monkeypatch.setenv("CRTEST_SECRET", server.password)
    monkeypatch.setenv("CRTEST_LOG", str(log))
    store = reg.login_env(engine.name, tmp_path / "auth")  # the published fixture's store
    path = store.get("REGISTRY_AUTH_FILE") or os.path.join(store["DOCKER_CONFIG"], "config.json")
    Path(path).write_text(json.dumps({"credHelpers": {server.host: credhelper.NAME}}))
    engine_client = client.client_for(engine)
    engine_client.version()  # connected: the job's pull goes through the API
    items: list[PullProgress] = []
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    out, err, rc = containerrunner.run_command(
        executable_cmd="/bin/busybox",
        cmdline_args=["echo", "pulled-with-a-helper"],
        private_data_dir=str(pdd),
        process_isolation=True,
        process_isolation_executable=engine.name,
        container_image=published,
        pull_progress_handler=items.append,
        quiet=True,
    )
    assert (rc, out.strip()) == (0, "pulled-with-a-helper"), err
    _check_items(items, published, API[engine.name])
    assert log.read_text().splitlines()[0] == f"get|{server.host}"
    encoded = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    assert _files_holding(server.password, pdd, tmp_path, Path(tempfile.gettempdir())) == []
    assert _files_holding(encoded, pdd, tmp_path) == []


def test_cli_session_start_on_a_tty_draws_the_pull(
    engine: Engine, pushed: str, tmp_path: Path
) -> None:
    """`session start` on a pty: the live pull row while pulling, then the ID."""
    ident = f"crtty-{uuid.uuid4().hex[:12]}"
    argv = ["session", "start", "--engine", engine.name, "--image", pushed]
    try:
        shown = _on_a_pty([*argv, "--mount", str(tmp_path), "-i", ident], cwd=tmp_path)
    finally:
        stopped = _cli(tmp_path, "session", "stop", ident)
    assert stopped.returncode == 0, stopped.stderr
    assert f"pull {pushed}: " in shown, shown[-3000:]
    assert shown.rstrip().splitlines()[-1].strip() == ident
