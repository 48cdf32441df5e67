"""The optimistic start: a container job whose pull policy pulls nothing for a present image
starts `<engine> run --pull=never` at once, its image query alongside; only a start the
engine refused (rc 125) while the image was not known present takes the old path (the
query first, then ImageNotFoundError or a pull and a second start).

The engine is a shell script that logs its calls and plays podman (no container runs): the
job goes through the real Runner, lifecycle and pipes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import EngineError, ImageNotFoundError
from containerrunner.isolation import images as images_mod
from containerrunner.progress import PullProgress

IMAGE = "localhost/optimistic:latest"
IMAGE_ID = "sha256:" + "cd" * 32
INSPECT = '[{"Id": "' + IMAGE_ID + '", "Labels": {}}]'
PINNED = "localhost/optimistic@sha256:" + "ef" * 32


class FakePodman:
    """`podman` on PATH: the image is present while `dir/present` exists (`pull` makes it);
    `run` prints to stdout and stderr when it is, else the engine's refusal (rc 125)."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        self.log = where / "calls"
        self.present = where / "present"
        self.dead = where / "dead"
        script = where / "podman"
        script.write_text(
            f'#!/bin/sh\necho "$*" >> "{self.log}"\n'
            f'if [ -e "{self.dead}" ]; then echo "Error: cannot connect" >&2; exit 125; fi\n'
            'case "$1" in\n'
            "  version) echo 9.8.7;;\n"
            "  --version) echo podman version 9.8.7;;\n"
            f"  image) if [ -e \"{self.present}\" ]; then echo '{INSPECT}';"
            " else echo '[]'; echo 'Error: no such image' >&2; exit 125; fi;;\n"
            f'  pull) touch "{self.present}"; echo "Copying blob sha256:aa done";'
            f" echo {IMAGE_ID};;\n"
            f'  run) if [ -e "{self.present}" ]; then echo "out of the container";'
            ' echo "err of the container" >&2;'
            ' else echo "Error: image not known (first attempt)" >&2; exit 125; fi;;\n'
            "  ps) ;;\n"
            "  *) exit 3;;\n"
            "esac\n"
        )
        script.chmod(0o755)

    def calls(self, verb: str) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line for line in lines if line.split(" ", 1)[0] == verb]


@pytest.fixture
def podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_engine_facts: None) -> FakePodman:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = FakePodman(bindir)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("CONTAINERRUNNER_ENGINE_API", "cli")
    return fake


@pytest.mark.parametrize(
    ("policy", "image", "at_once"),
    [
        ("never", IMAGE, True),
        ("missing", IMAGE, True),
        ("always", IMAGE, False),
        ("newer", IMAGE, False),
        ("always", PINNED, True),
        ("newer", PINNED, True),
        ("always", IMAGE_ID, True),
    ],
)
def test_which_policies_start_at_once(policy: str, image: str, at_once: bool) -> None:
    assert images_mod.starts_at_once(policy, image) is at_once


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="'sometimes'"):
        images_mod.starts_at_once("sometimes", IMAGE)


def _job(tmp_path: Path, **kwargs: Any) -> tuple[containerrunner.Runner, list[str]]:
    statuses: list[str] = []
    config = containerrunner.RunnerConfig(
        private_data_dir=str(tmp_path / "pdd"),
        host_pattern="localhost",
        module="ping",
        process_isolation=True,
        process_isolation_executable="podman",
        container_image=IMAGE,
        ident="job",
        **{"runner_mode": "subprocess", **kwargs},
    )
    config.prepare()
    runner = containerrunner.Runner(
        config=config, status_handler=lambda data, _config: statuses.append(data["status"])
    )
    return runner, statuses


def _run_job(tmp_path: Path, **kwargs: Any) -> tuple[containerrunner.Runner, list[str], Path]:
    runner, statuses = _job(tmp_path, **kwargs)
    runner.run()
    return runner, statuses, Path(runner.artifact_dir)


def test_a_present_image_starts_at_once_and_its_id_is_in_the_provenance(
    podman: FakePodman, tmp_path: Path
) -> None:
    podman.present.touch()
    runner, statuses, artifacts = _run_job(tmp_path, pull="missing")
    assert (runner.status, runner.rc) == ("successful", 0)
    assert statuses == ["starting", "running", "successful"]
    assert (artifacts / "stdout").read_text() == "out of the container\n"
    assert (artifacts / "stderr").read_text() == "err of the container\n"
    assert json.loads((artifacts / "provenance.json").read_text())["image_id"] == IMAGE_ID
    assert len(podman.calls("image")) == 1 and len(podman.calls("run")) == 1
    assert "--pull=never" in podman.calls("run")[0].split()
    assert podman.calls("pull") == []


def test_an_absent_image_under_never_runs_nothing_and_leaves_nothing(
    podman: FakePodman, tmp_path: Path
) -> None:
    runner, statuses = _job(tmp_path, pull="never")
    with pytest.raises(ImageNotFoundError, match=IMAGE):
        runner.run()
    assert (runner.status, runner.rc) == ("failed", 254)
    assert statuses == ["starting", "failed"]  # never `running`
    assert not (tmp_path / "pdd" / "artifacts").exists()  # not even the failed attempt's
    assert len(podman.calls("run")) == 1 and podman.calls("pull") == []


def test_an_absent_image_under_missing_is_pulled_then_started_again(
    podman: FakePodman, tmp_path: Path
) -> None:
    pulled: list[PullProgress] = []
    runner, statuses = _job(tmp_path, pull="missing")
    runner.pull_progress_handler = pulled.append
    runner.run()
    artifacts = Path(runner.artifact_dir)
    assert (runner.status, runner.rc) == ("successful", 0)
    assert statuses == ["starting", "running", "successful"]
    assert pulled, "no pull progress"
    # the first attempt's refusal is in no output of the job
    assert (artifacts / "stdout").read_text() == "out of the container\n"
    assert (artifacts / "stderr").read_text() == "err of the container\n"
    assert "first attempt" not in "".join(
        p.read_text(errors="replace") for p in artifacts.rglob("*") if p.is_file()
    )
    assert json.loads((artifacts / "provenance.json").read_text())["image_id"] == IMAGE_ID
    assert len(podman.calls("run")) == 2 and len(podman.calls("pull")) == 1


def test_a_start_refused_with_the_image_present_is_the_jobs_failure(
    podman: FakePodman, tmp_path: Path
) -> None:
    """rc 125 with the image present is not retried: the engine's message is the job's."""
    podman.present.touch()
    script = podman.dir / "podman"
    script.write_text(
        script.read_text().replace(
            'echo "out of the container";', 'echo "bad option" >&2; exit 125;'
        )
    )
    runner, statuses, artifacts = _run_job(tmp_path, pull="missing")
    assert (runner.status, runner.rc) == ("failed", 125)
    assert statuses == ["starting", "running", "failed"]
    assert (artifacts / "stderr").read_text() == "bad option\n"
    assert len(podman.calls("run")) == 1 and podman.calls("pull") == []


def test_a_dead_engine_is_an_engine_error_naming_it(podman: FakePodman, tmp_path: Path) -> None:
    podman.dead.touch()
    runner, _statuses = _job(tmp_path, pull="missing")
    with pytest.raises(EngineError, match="podman does not answer"):
        runner.run()
    assert runner.status == "failed"
    assert not (tmp_path / "pdd" / "artifacts").exists()
    assert podman.calls("pull") == []


def test_a_pty_without_prompts_starts_at_once_its_first_attempt_unseen(
    podman: FakePodman, tmp_path: Path
) -> None:
    runner, statuses = _job(tmp_path, pull="missing", runner_mode="pexpect")
    runner.run()
    artifacts = Path(runner.artifact_dir)
    assert (runner.status, statuses) == ("successful", ["starting", "running", "successful"])
    assert (artifacts / "stdout").read_text() == "out of the container\nerr of the container\n"
    assert len(podman.calls("run")) == 2 and "-t" in podman.calls("run")[0].split()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pull": "always"},  # an unpinned always pulls first
        {"pull": "missing", "rotate_artifacts": 2},
        {"pull": "missing", "runner_mode": "pexpect", "passwords": {"Password:": "secret"}},
    ],
)
def test_the_query_stays_first_where_an_attempt_could_not_be_undone(
    podman: FakePodman, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    podman.present.touch()
    runner, _statuses, _artifacts = _run_job(tmp_path, **kwargs)
    assert runner.status == "successful"
    order = [line.split(" ", 1)[0] for line in podman.log.read_text().splitlines()]
    assert order.index("image") < order.index("run")


def test_an_ident_with_artifacts_keeps_them_when_the_image_is_absent(
    podman: FakePodman, tmp_path: Path
) -> None:
    """The query comes first for an ident used before: an absent image leaves its files."""
    podman.present.touch()
    _run_job(tmp_path, pull="never")
    podman.present.unlink()
    before = {p: p.read_bytes() for p in (tmp_path / "pdd" / "artifacts").rglob("*") if p.is_file()}
    runner, _statuses = _job(tmp_path, pull="never")
    with pytest.raises(ImageNotFoundError):
        runner.run()
    after = {p: p.read_bytes() for p in (tmp_path / "pdd" / "artifacts").rglob("*") if p.is_file()}
    assert after == before
    assert len(podman.calls("run")) == 1  # the second job did not start
