"""Pull policies against a real registry on 127.0.0.1 (tests/registry.py: docker-registry with
htpasswd auth and a self-signed certificate), on podman and docker."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from containerrunner.errors import CommandError, ImageNotFoundError
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
def pushed(
    engine: Engine,
    registry: tuple[reg.Registry, subprocess.Popen[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A small image pushed to the registry under a unique name, absent locally, with the
    engine logged in through an auth store of this test's own (environment variable)."""
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
    login_opts = ["--username", server.username, "--password-stdin", server.host]
    subprocess.run(
        engine.command("login", *login_opts),
        input=server.password,
        capture_output=True,
        text=True,
        check=True,
    )
    assert not image_present(engine, target)
    try:
        yield target
    finally:
        subprocess.run(engine.command("rmi", "-f", target), capture_output=True, check=False)


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


def test_wrong_credentials_fail_the_pull(
    engine: Engine, pushed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry really enforces its htpasswd: without the login the pull is refused."""
    empty = tmp_path / "no-auth"
    empty.mkdir()
    for key, value in reg.login_env(engine.name, empty).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ImageNotFoundError):
        ensure_image(engine, pushed, "missing")
