"""container_transport='stream' for real: the job's files reach the container on its stdin
(no bind mount), through the relay and the standard-library bootstrap, in the project's EE
image with podman and docker: the same events and stats as with bind mounts, files the play
writes come back, run_command's output, and a cancel that leaves no container.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.conftest import our_containers
from tests.integration.support import LOCAL_VARS, container_kwargs, copy_examples, event_shape

WRITER = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Make a dir in the project
      ansible.builtin.file:
        path: "{{ playbook_dir }}/out"
        state: directory
    - name: Write into the project
      ansible.builtin.copy:
        content: "written by {{ inventory_hostname }}\\n"
        dest: "{{ playbook_dir }}/out/result.txt"
    - name: Sleep when asked
      ansible.builtin.command: sleep 300
      when: nap | default(false) | bool
"""


def _writer_pdd(tmp_path: Path) -> Path:
    pdd = tmp_path / "writer"
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "project" / "site.yml").write_text(WRITER)
    (pdd / "inventory" / "hosts").write_text(f"box {LOCAL_VARS}\n")
    return pdd


def test_the_demo_streamed_gives_what_bind_mounts_give(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    demo = copy_examples(tmp_path)
    kwargs = {"private_data_dir": str(demo), "playbook": "site.yml", **container_kwargs(engine)}
    mounted = containerrunner.run(**kwargs, ident="mounted")
    streamed = containerrunner.run(**kwargs, ident="streamed", container_transport="stream")
    assert (streamed.status, streamed.rc) == ("successful", 0)
    assert event_shape(streamed.events) == event_shape(mounted.events)
    assert streamed.stats == mounted.stats
    assert "PLAY RECAP" in (demo / "artifacts" / "streamed" / "stdout").read_text()


def test_files_the_play_writes_come_back(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    pdd = _writer_pdd(tmp_path)
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="site.yml", container_transport="stream",
        **container_kwargs(engine),
    )  # fmt: skip
    assert (r.status, r.rc) == ("successful", 0), r.stdout.read()
    assert (pdd / "project" / "out" / "result.txt").read_text() == "written by box\n"
    assert [e["event"] for e in r.events].count("runner_on_ok") == 2
    provenance = json.loads((pdd / "artifacts" / r.config.ident / "provenance.json").read_text())
    assert provenance["container_transport"] == "stream"
    assert provenance["argv"][1:3] == ["-m", "containerrunner.streaming.relay"]


def test_run_command_streamed(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    # host_cwd: the cwd is carried whole (a checkout with .tox/ is over the payload bound)
    out, err, rc = containerrunner.run_command(
        "ansible", ["--version"], container_transport="stream", host_cwd=str(tmp_path),
        **container_kwargs(engine),
    )  # fmt: skip
    assert rc == 0, err
    assert "ansible [core 2.19" in out


def test_a_canceled_streamed_job_leaves_no_container(
    engine: Engine, no_leftover_containers: Engine, tmp_path: Path
) -> None:
    pdd = _writer_pdd(tmp_path)
    napping = threading.Event()

    def on_event(event: dict[str, object]) -> bool:
        data = event.get("event_data")
        if isinstance(data, dict) and data.get("task") == "Sleep when asked":
            napping.set()
        return True

    thread, runner = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="site.yml", extravars={"nap": True},
        container_transport="stream", event_handler=on_event,
        cancel_callback=napping.is_set, **container_kwargs(engine),
    )  # fmt: skip
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert runner.status == "canceled"
    assert f"containerrunner_{runner.config.ident}" not in our_containers(engine)
