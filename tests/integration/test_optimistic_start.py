"""The optimistic start on the real engines: a job whose pull policy pulls nothing for a
present image starts `<engine> run --pull=never` at once, its image query alongside (the
query's image ID in provenance.json); an absent image under `never` is ImageNotFoundError
with nothing of the refused first attempt left anywhere. (`missing` pulling an absent image
and starting again: test_registry.py, which has a registry to pull from.)"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from containerrunner.isolation.images import image_digest
from tests.conftest import EE_IMAGE, image_present, our_containers
from tests.integration.support import container_kwargs

pytestmark = pytest.mark.integration


@pytest.fixture
def tagged(engine: Engine) -> Iterator[str]:
    """A throwaway tag of the EE, removed afterwards (the image itself stays)."""
    tag = f"localhost/cr-pod12-tag:{uuid.uuid4().hex[:12]}"
    subprocess.run(engine.command("tag", EE_IMAGE, tag), capture_output=True, check=True)
    try:
        yield tag
    finally:
        subprocess.run(engine.command("rmi", tag), capture_output=True, check=False)


def _command_job(
    engine: Engine, image: str, pdd: Path, ident: str, pull: str
) -> tuple[str, str, int]:
    return containerrunner.run_command(
        executable_cmd="ansible",
        cmdline_args=["--version"],
        private_data_dir=str(pdd),
        ident=ident,
        pull=pull,
        quiet=True,
        **container_kwargs(engine, image),
    )


@pytest.mark.parametrize("pull", ["missing", "never"])
def test_a_present_image_runs_without_a_pull_its_id_recorded(
    engine: Engine, tagged: str, tmp_path: Path, pull: str
) -> None:
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    statuses: list[str] = []
    out, err, rc = containerrunner.run_command(
        executable_cmd="ansible",
        cmdline_args=["--version"],
        private_data_dir=str(pdd),
        ident="present",
        pull=pull,
        quiet=True,
        status_handler=lambda data, _config: statuses.append(data["status"]),
        **container_kwargs(engine, tagged),
    )
    assert rc == 0, err
    assert out.startswith("ansible [core ")
    assert statuses == ["starting", "running", "successful"]
    artifacts = pdd / "artifacts" / "present"
    record = json.loads((artifacts / "provenance.json").read_text())
    assert record["image"] == tagged
    assert record["image_id"] == image_digest(engine, EE_IMAGE)
    assert "--pull=never" in record["argv"]
    assert (artifacts / "stdout").read_text() == out
    assert our_containers(engine, os.getpid()) == []


def test_an_absent_image_under_never_leaves_nothing_of_the_attempt(
    engine: Engine, tmp_path: Path
) -> None:
    absent = f"localhost/cr-pod12-absent:{uuid.uuid4().hex[:12]}"
    assert not image_present(engine, absent)
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    output = tmp_path / "output"
    statuses: list[str] = []
    with (
        open(output, "w") as sink,
        pytest.raises(containerrunner.ImageNotFoundError, match="scripts/build-images") as info,
    ):
        containerrunner.run_command(
            executable_cmd="ansible",
            cmdline_args=["--version"],
            private_data_dir=str(pdd),
            pull="never",
            output_fd=sink,
            error_fd=sink,
            status_handler=lambda data, _config: statuses.append(data["status"]),
            **container_kwargs(engine, absent),
        )
    assert absent in str(info.value)
    assert statuses == ["starting", "failed"]
    assert output.read_text() == ""  # not the engine's "image not known" / "No such image"
    assert not (pdd / "artifacts").exists()
    assert our_containers(engine, os.getpid()) == []


def test_a_used_ident_keeps_its_artifacts_when_the_image_is_absent(
    engine: Engine, tagged: str, tmp_path: Path
) -> None:
    """An ident used before takes the query-first path: its earlier artifacts stay."""
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    assert _command_job(engine, tagged, pdd, "again", "never")[2] == 0
    before = {p: p.read_bytes() for p in (pdd / "artifacts").rglob("*") if p.is_file()}
    subprocess.run(engine.command("rmi", tagged), capture_output=True, check=True)
    with pytest.raises(containerrunner.ImageNotFoundError):
        _command_job(engine, tagged, pdd, "again", "never")
    assert {p: p.read_bytes() for p in (pdd / "artifacts").rglob("*") if p.is_file()} == before
