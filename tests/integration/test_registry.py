"""Pull policies against a real registry on 127.0.0.1 (tests/registry.py: docker-registry with
htpasswd auth and a self-signed certificate), on podman and docker."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import containerrunner
from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import CommandError, ImageNotFoundError, RegistryLoginError
from containerrunner.isolation.engine import Engine
from containerrunner.isolation.images import ensure_image, image_digest
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
    assert list(runtime_parent.iterdir()) == []
    assert list((tmp_path / "auth").iterdir()) == []  # the default store (login_env)


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
