"""`containerrunner run` as a group, as a user types it: the demo with podman and docker
prints a table with a row per engine; Ctrl-C cancels every job and leaves no container; a bad
combination of flags is a one-line usage error."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest

from containerrunner.isolation.containerize import container_name
from containerrunner.isolation.engine import Engine
from tests.conftest import EE_IMAGE, EngineProbe, _engine, our_containers
from tests.e2e.test_cli_run import cli, cli_env, demo  # noqa: F401  (demo: a fixture)

ENGINES = ("podman", "docker")
SLEEP_PLAYBOOK = """\
- name: Slow play
  hosts: web1
  gather_facts: false
  tasks:
    - name: Sleep for a long time
      ansible.builtin.command: sleep 600
"""


@pytest.fixture
def engines(
    request: pytest.FixtureRequest, engine_probes: dict[str, EngineProbe]
) -> dict[str, Engine]:
    return {name: _engine(request, engine_probes, name) for name in ENGINES}


def engine_flags() -> list[str]:
    return ["--engine", "podman", "--engine", "docker", "--container-image", EE_IMAGE]


@pytest.mark.integration
@pytest.mark.podman
@pytest.mark.docker
def test_a_group_over_two_engines_prints_a_table(
    demo: Path,  # noqa: F811
    engines: dict[str, Engine],
) -> None:
    proc = cli("run", str(demo), "-p", "site.yml", "-i", "g1", *engine_flags(), cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("JOB "))
    assert lines[header].split() == [
        "JOB", "STATUS", "RC", "OK", "CHANGED", "FAILED", "UNREACHABLE", "ARTIFACTS",
    ]  # fmt: skip
    rows = [line.split() for line in lines[header + 1 :]]
    art = demo / "artifacts"
    assert rows == [
        ["engine=podman", "successful", "0", "13", "3", "0", "0", str(art / "g1-podman")],
        ["engine=docker", "successful", "0", "13", "3", "0", "0", str(art / "g1-docker")],
    ]  # fmt: skip
    for name in ENGINES:
        assert (demo / "artifacts" / f"g1-{name}" / "status").read_text().strip() == "successful"
    assert "Traceback" not in proc.stderr


@pytest.mark.integration
@pytest.mark.podman
@pytest.mark.docker
def test_ctrl_c_cancels_the_whole_group(demo: Path, engines: dict[str, Engine]) -> None:  # noqa: F811
    (demo / "project" / "sleep.yml").write_text(SLEEP_PLAYBOOK)
    args = ["-m", "containerrunner", "run", str(demo), "-p", "sleep.yml", "-i", "gc"]
    child = pexpect.spawn(
        sys.executable,
        args + engine_flags(),
        cwd=str(demo),
        env=cli_env() | {"TERM": "xterm"},
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 160),
    )
    try:
        child.expect("Sleep for a long time")  # the live view shows a job's running task
        child.sendintr()
        child.expect("canceling")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 254
    for name, engine in engines.items():
        ident = f"gc-{name}"
        assert (demo / "artifacts" / ident / "status").read_text().strip() == "canceled"
        assert container_name(ident) not in our_containers(engine)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--process-isolation-executable", "docker"], "--process-isolation-executable"),
        (["--engine", "podman"], "--engine podman given twice"),
        (["--max-parallel", "0"], "--max-parallel"),
    ],
)
def test_a_bad_combination_is_a_one_line_usage_error(
    demo: Path,  # noqa: F811
    extra: list[str],
    message: str,
) -> None:
    proc = cli(
        "run", str(demo), "-p", "site.yml", "--engine", "podman", "--engine", "docker", *extra,
        cwd=demo,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith("containerrunner: error: ") and message in line
