"""Group runs with real engines: the demo over two images x two engines (podman and docker)
gives four results in input order; canceling one long job of four leaves the other three to
finish, and no container behind. Needs both engines and both EE images."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.containerize import container_name
from containerrunner.isolation.engine import Engine
from tests.conftest import (
    EE_IMAGE,
    _unavailable,
    image_present,
    our_containers,
)
from tests.integration.support import ansible_on_path, copy_examples  # noqa: F401  (autouse)

pytestmark = [pytest.mark.integration, pytest.mark.podman, pytest.mark.docker]

OLD_EE_IMAGE = "localhost/containerrunner-ee:ansible-core-2.14"
ENGINES = ("podman", "docker")
IMAGES = (EE_IMAGE, OLD_EE_IMAGE)
LIMIT = 300  # seconds; only so that a bug fails the test instead of hanging it

SLOW_PLAYBOOK = """\
- name: Slow play
  hosts: web1
  gather_facts: false
  tasks:
    - name: Sleep for a long time
      ansible.builtin.command: sleep 600
"""


@pytest.fixture
def engines(request: pytest.FixtureRequest, both_engines: dict[str, Engine]) -> dict[str, Engine]:
    """podman and docker, each with both EE images (no container left: `both_engines`)."""
    for engine in both_engines.values():
        if not image_present(engine, OLD_EE_IMAGE):
            _unavailable(request, f"{engine.name}: image {OLD_EE_IMAGE} missing")
    return both_engines


def demo_job(demo: Path, engine: str, image: str, **kw: Any) -> dict[str, Any]:
    return {
        "private_data_dir": str(demo),
        "playbook": "site.yml",
        "process_isolation": True,
        "process_isolation_executable": engine,
        "container_image": image,
        "quiet": True,
        **kw,
    }


def test_demo_over_two_images_and_two_engines(engines: dict[str, Engine], tmp_path: Path) -> None:
    demo = copy_examples(tmp_path)
    matrix = [(engine, image) for engine in ENGINES for image in IMAGES]
    results = containerrunner.run_group(
        [demo_job(demo, engine, image) for engine, image in matrix], max_parallel=2
    )
    assert [r.index for r in results] == [0, 1, 2, 3]
    dirs = set()
    for result, (engine, image) in zip(results, matrix, strict=True):
        assert (result.status, result.rc, result.error) == ("successful", 0, None), result
        assert result.label == f"engine={engine} image={image}"
        assert result.stats is not None
        assert set(result.stats["ok"]) == {"web1", "web2", "db1"}
        assert result.summary is not None
        assert result.summary.hosts["web1"].state == "changed"
        assert result.artifact_dir is not None
        dirs.add(result.artifact_dir)
        provenance = json.loads((Path(result.artifact_dir) / "provenance.json").read_text())
        assert (provenance["engine"], provenance["image"]) == (engine, image)
        wanted = "2.14." if image == OLD_EE_IMAGE else ""
        assert str(provenance["ansible_core"]).startswith(wanted)
    assert len(dirs) == 4


def test_canceling_one_job_leaves_the_other_three_to_finish(
    engines: dict[str, Engine], tmp_path: Path
) -> None:
    demo = copy_examples(tmp_path)
    (demo / "project" / "slow.yml").write_text(SLOW_PLAYBOOK)
    sleeping = threading.Event()

    def on_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        if event["event"] == "runner_on_start" and data.get("task") == "Sleep for a long time":
            sleeping.set()
        return True

    slow = 1
    jobs = [
        demo_job(demo, "podman", EE_IMAGE),
        demo_job(demo, "docker", EE_IMAGE, playbook="slow.yml", event_handler=on_event),
        demo_job(demo, "podman", OLD_EE_IMAGE),
        demo_job(demo, "docker", OLD_EE_IMAGE),
    ]
    group = containerrunner.run_group_async(jobs)
    try:
        assert sleeping.wait(LIMIT), "the slow job's task never started"
        runner = group.runners[slow]
        assert runner is not None and runner.status == "running"
        group.cancel(slow)
        results = group.wait()
    finally:
        group.cancel()
        group.wait()
    assert [(r.status, r.rc) for r in results] == [
        ("successful", 0), ("canceled", 254), ("successful", 0), ("successful", 0),
    ]  # fmt: skip
    canceled = results[slow]
    assert canceled.artifact_dir is not None
    assert (Path(canceled.artifact_dir) / "status").read_text().strip() == "canceled"
    assert canceled.runner is not None
    assert container_name(canceled.runner.job.ident) not in our_containers(engines["docker"])
