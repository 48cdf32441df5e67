"""`scripts/build-images --verify`: every image built twice from clean, in private podman stores,
gives the same ID both times and the one recorded in the recipes' expected-ids.

Opt-in (`--image-verify` or CONTAINERRUNNER_IMAGE_VERIFY=1): the two builds take tens of
minutes (two mmdebstrap runs and the EE and network EE builds), more than CI has."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from containerrunner.cli import images
from tests.integration.support import short_temp_dir

pytestmark = [pytest.mark.integration, pytest.mark.podman, pytest.mark.image_verify]

EXPECTED_IDS = images.RECIPES / "expected-ids"


@pytest.fixture(autouse=True)
def _opt_in(request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("--image-verify"):
        pytest.skip("builds every image twice: run with --image-verify")


def test_verify_builds_the_recorded_ids_twice(tmp_path: Path) -> None:
    recorded = EXPECTED_IDS.read_text()
    with short_temp_dir("cr-v-") as short:  # the stores' runroots: at most 50 characters
        proc = subprocess.run(
            ["bash", str(images.BUILD_SCRIPT), "--verify"],
            env=dict(os.environ, TMPDIR=str(short), XDG_STATE_HOME=str(tmp_path / "state")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        left = list(short.glob("cr-verify.*"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "verify: reproducible; the IDs are the ones in" in proc.stderr, proc.stderr[-4000:]
    assert EXPECTED_IDS.read_text() == recorded
    for line in recorded.splitlines():
        if line and not line.startswith("#"):
            image, arch, image_id = line.split()
            if arch == platform.machine():
                assert f"verify: {image}: {image_id[:12]} both times" in proc.stderr
    assert not left, "the private stores are removed"
