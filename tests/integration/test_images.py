"""The project's EE images, run directly with the engines (foundation checks)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from containerrunner.isolation.engine import Engine
from tests.conftest import EE_IMAGE, NETWORK_EE_IMAGE, image_present

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
