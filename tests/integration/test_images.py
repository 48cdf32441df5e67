"""The project's EE images, run directly with the engines (foundation checks)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from containerrunner.isolation.engine import Engine
from tests.conftest import (
    EE_IMAGE,
    NETWORK_EE_IMAGE,
    EngineProbe,
    image_present,
    require_engine,
)
from tests.integration.support import built_from_committed_recipe, recorded_image_ids

pytestmark = pytest.mark.integration


def run_in(engine: Engine, image: str, *cmd: str, extra: tuple[str, ...] = ()) -> str:
    proc = subprocess.run(
        engine.command("run", "--rm", *extra, image, *cmd),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, f"{engine.name} run {image} {cmd} failed: {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.mark.parametrize("image", [EE_IMAGE, NETWORK_EE_IMAGE])
def test_image_runs_ansible(engine: Engine, image: str) -> None:
    if not image_present(engine, image):
        pytest.fail(f"{image} missing in {engine.name}: run scripts/build-images")
    version = run_in(engine, image, "ansible", "--version")
    assert version.startswith("ansible [core 2.19.")
    modules = run_in(engine, image, "ansible-doc", "-l", "-t", "module")
    assert "ansible.builtin.command" in modules


def test_network_ee_has_vyos_command_docs(engine: Engine) -> None:
    out = run_in(engine, NETWORK_EE_IMAGE, "ansible-doc", "-j", "vyos.vyos.vyos_command")
    assert '"vyos.vyos.vyos_command"' in out
    assert "paramiko" in run_in(engine, NETWORK_EE_IMAGE, "pip", "list")


def test_image_has_no_containerrunner(engine: Engine) -> None:
    out = run_in(
        engine,
        EE_IMAGE,
        "python3",
        "-c",
        "import importlib.util as u;print(u.find_spec('containerrunner'))",
    )
    assert out.strip() == "None"


def test_files_written_to_mount_belong_to_caller(engine: Engine, tmp_path: Path) -> None:
    user = engine.user_args(os.getuid(), os.getgid())
    mount = engine.mount_arg(str(tmp_path), str(tmp_path), read_only=False)
    run_in(engine, EE_IMAGE, "touch", str(tmp_path / "made-in-container"), extra=(*user, *mount))
    made = tmp_path / "made-in-container"
    assert made.exists()
    assert (made.stat().st_uid, made.stat().st_gid) == (os.getuid(), os.getgid())


def _image_id(engine: Engine, image: str) -> str:
    proc = subprocess.run(
        engine.command("image", "inspect", "--format", "{{.Id}}", image),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"{engine.name} image inspect {image}: {proc.stderr.strip()}"
    return proc.stdout.strip().removeprefix("sha256:")


@pytest.mark.podman
@pytest.mark.docker
def test_both_engines_hold_the_recorded_image_ids(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]
) -> None:
    """scripts/build-images gave the IDs the committed locks give (recipes/expected-ids), and
    docker, which gets each image by `podman save | docker load`, runs the identical one."""
    recorded = recorded_image_ids()
    if not recorded:
        pytest.skip(f"no IDs recorded for {platform.machine()} in recipes/expected-ids")
    podman = require_engine(request, engine_probes, "podman")
    docker = require_engine(request, engine_probes, "docker")
    for image, expected in sorted(recorded.items()):
        if not built_from_committed_recipe(podman, image):
            continue  # built from other inputs (--base-image, a local relock): no record to meet
        built = _image_id(podman, image)
        assert built == expected, (
            f"podman holds {image} as {built[:12]}, the locks give {expected[:12]}"
            " (recipes/expected-ids): the build is not reproducible, or the recipe changed"
            " without scripts/build-images --verify"
        )
        assert _image_id(docker, image) == built, f"docker's {image} is not podman's {built[:12]}"
