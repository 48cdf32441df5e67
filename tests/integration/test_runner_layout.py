"""ansible-runner's container paths: the private data dir is also at /runner in podman and docker.

`/runner/project`, `/runner/inventory`, `/runner/env` (read-only: it holds secrets) and
`/runner/artifacts` (the job's artifact base) resolve inside the container, besides the
same-path mounts.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.integration.support import LOCAL_VARS, container_kwargs

pytestmark = pytest.mark.integration

ROLE_SPEC = (
    "argument_specs:\n  main:\n    short_description: Greets\n    options:\n"
    "      name: {type: str, required: true, description: who}\n"
)

# Reads and writes ansible-runner's container paths; every result is checked by an assert task
# or, for what it writes, from the host by the test.
LAYOUT_PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.stat: {path: /runner/project/site.yml}
      register: playbook
    - ansible.builtin.stat: {path: /runner/inventory/hosts}
      register: inventory
    - ansible.builtin.slurp: {src: /runner/env/extravars}
      register: extravars
    - ansible.builtin.command: touch /runner/env/written-from-container
      register: env_write
      failed_when: false
    - ansible.builtin.copy: {content: "from the container\\n", dest: /runner/artifacts/probe.txt}
    - ansible.builtin.copy: {content: "project is writable\\n", dest: /runner/project/out.txt}
    - ansible.builtin.assert:
        that:
          - playbook.stat.exists and playbook.stat.isreg
          - inventory.stat.exists
          - "'greeting: from env/extravars' in (extravars.content | b64decode)"
          - env_write.rc != 0
          - "'Read-only file system' in env_write.stderr"
"""


def make_pdd(tmp_path: Path) -> Path:
    """A private data dir: project/ (a playbook and a role with an argument spec),
    inventory/hosts, env/extravars."""
    pdd = tmp_path / "pdd"
    meta = pdd / "project" / "roles" / "greeter" / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(ROLE_SPEC)
    (meta.parent / "tasks").mkdir()
    (meta.parent / "tasks" / "main.yml").write_text("- debug: {msg: hi}\n")
    (pdd / "project" / "site.yml").write_text(LAYOUT_PLAY)
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts").write_text(f"localhost {LOCAL_VARS}\n")
    (pdd / "env").mkdir()
    (pdd / "env" / "extravars").write_text("greeting: from env/extravars\n")
    return pdd


def elsewhere(tmp_path: Path) -> str:
    """A host cwd outside the private data dir: nothing under it is mounted by the same path."""
    work = tmp_path / "work"
    work.mkdir()
    return str(work)


def test_role_list_in_runner_project(engine: Engine, tmp_path: Path) -> None:
    pdd = make_pdd(tmp_path)
    kwargs = {"private_data_dir": str(pdd), "host_cwd": elsewhere(tmp_path)}
    roles, _ = containerrunner.get_role_list(
        playbook_dir="/runner/project", **kwargs, **container_kwargs(engine)
    )
    assert "greeter" in roles
    spec, _ = containerrunner.get_role_argspec(
        "greeter", playbook_dir="/runner/project", **kwargs, **container_kwargs(engine)
    )
    assert spec["greeter"]["entry_points"]["main"]["options"]["name"]["required"] is True


@pytest.mark.parametrize("artifacts", ["in_pdd", "artifact_dir"])
def test_playbook_reads_and_writes_runner_paths(
    engine: Engine, tmp_path: Path, artifacts: str
) -> None:
    pdd = make_pdd(tmp_path)
    artifact_base = pdd / "artifacts" if artifacts == "in_pdd" else tmp_path / "art"
    extra = {"artifact_dir": str(artifact_base)} if artifacts == "artifact_dir" else {}
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="site.yml", **extra, **container_kwargs(engine)
    )
    out = r.stdout.read()
    assert (r.status, r.rc) == ("successful", 0), out
    assert (artifact_base / "probe.txt").read_text() == "from the container\n"
    assert (pdd / "project" / "out.txt").read_text() == "project is writable\n"
    assert not (pdd / "env" / "written-from-container").exists()
    # the slurped extravars came through the read-only /runner/env
    slurped = next(
        e["event_data"]["res"]["content"]
        for e in r.events
        if e["event"] == "runner_on_ok" and e["event_data"]["task_action"].endswith("slurp")
    )
    assert base64.b64decode(slurped) == b"greeting: from env/extravars\n"


def test_run_command_lists_runner_project(engine: Engine, tmp_path: Path) -> None:
    pdd = make_pdd(tmp_path)
    out, err, rc = containerrunner.run_command(
        "ls", ["/runner/project"], private_data_dir=str(pdd), host_cwd=elsewhere(tmp_path),
        **container_kwargs(engine),
    )  # fmt: skip
    assert rc == 0, err
    assert sorted(out.split()) == ["roles", "site.yml"]
