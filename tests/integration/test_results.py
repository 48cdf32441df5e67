"""Per-task results (containerrunner.results): a playbook over local hosts where one is
unreachable (ssh to 127.0.0.1 port 1, where nothing listens), one fails a task with
ignore_errors and one is rescued. Every task x host lands in the right bucket, the unreachable
host in every later task; the same summary comes out of an artifacts dir ansible-runner 2.4.3
wrote for that playbook; on the host and in podman and docker."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import ansible_runner
import pytest

import containerrunner
from containerrunner.results import BUCKETS, Summary, load
from tests.integration.support import ansible_on_path  # noqa: F401  (an autouse fixture)

pytestmark = pytest.mark.integration

INVENTORY = """\
[all:vars]
ansible_python_interpreter="{{ ansible_playbook_python }}"
[local]
good ansible_connection=local
ignorer ansible_connection=local
rescuer ansible_connection=local
[remote]
gone ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh ansible_user=nobody \
ansible_ssh_common_args="-o StrictHostKeyChecking=no -o ConnectTimeout=5"
"""

PLAYBOOK = """\
- name: Main
  hosts: all
  gather_facts: false
  tasks:
    - name: first
      ansible.builtin.ping:
    - name: maybe fail
      ansible.builtin.command: "false"
      when: inventory_hostname == 'ignorer'
      ignore_errors: true
    - name: guarded
      block:
        - name: breaks
          ansible.builtin.fail:
            msg: broken on purpose
          when: inventory_hostname == 'rescuer'
      rescue:
        - name: recover
          ansible.builtin.debug:
            msg: recovered
    - name: change
      ansible.builtin.command: echo hi
    - name: change
      ansible.builtin.debug:
        msg: a second task with the same name
"""

EXPECTED = [
    ("first", {"ok": ["good", "ignorer", "rescuer"], "unreachable": ["gone"]}),
    ("maybe fail", {"skipped": ["good", "rescuer"], "ignored": ["ignorer"],
                    "unreachable": ["gone"]}),
    ("breaks", {"skipped": ["good", "ignorer"], "rescued": ["rescuer"], "unreachable": ["gone"]}),
    ("recover", {"ok": ["rescuer"], "unreachable": ["gone"]}),
    ("change", {"changed": ["good", "ignorer", "rescuer"], "unreachable": ["gone"]}),
    ("change", {"ok": ["good", "ignorer", "rescuer"], "unreachable": ["gone"]}),
]  # fmt: skip


def private_data_dir(root: Path) -> str:
    (root / "project").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "project" / "site.yml").write_text(PLAYBOOK)
    (root / "inventory" / "hosts").write_text(INVENTORY)
    return str(root)


def shape(summary: Summary) -> list[tuple[str, dict[str, list[str]]]]:
    return [
        (task.name, {b: sorted(getattr(task, b)) for b in BUCKETS if getattr(task, b)})
        for task in summary.tasks
    ]


def test_every_task_and_host_in_its_bucket(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = private_data_dir(tmp_path / "ours")
    runner = containerrunner.run(private_data_dir=pdd, playbook="site.yml", quiet=True, **where)
    assert (runner.status, runner.rc) == ("failed", 4)  # an unreachable host: rc 4
    summary = runner.task_results()
    assert shape(summary) == EXPECTED
    first, second = (t for t in summary.tasks if t.name == "change")
    assert first.uuid != second.uuid and first.path != second.path
    assert all(task.play == "Main" for task in summary.tasks)
    # the unreachable host's own result, then carried forward
    assert summary.task("first").unreachable["gone"]["unreachable"] is True
    assert summary.task("change").unreachable["gone"]["carried_forward"] is True
    res = summary.task("maybe fail").ignored["ignorer"]
    assert res["rc"] == 1 and not any(key.startswith("_ansible_") for key in res)
    states = {host: (h.state, h.failed_tasks) for host, h in summary.hosts.items()}
    assert states == {
        "gone": ("unreachable", []),
        "good": ("changed", []),
        "ignorer": ("changed", []),
        "rescuer": ("changed", []),
    }
    # the recap agrees: what the buckets count is what Ansible counted
    assert runner.stats is not None
    assert runner.stats["rescued"] == {"rescuer": 1}
    assert runner.stats["ignored"] == {"ignorer": 1}
    assert runner.stats["dark"] == {"gone": 1}
    # summary.json, and load() of the artifacts dir give the same
    written = json.loads((Path(runner.artifact_dir) / "summary.json").read_text())
    assert written == summary.to_dict()
    assert shape(load(runner.artifact_dir)) == EXPECTED


DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
CASE_CHILDREN = {"skipped", "error", "failure", "system-out", "system-err"}


def check_junit(root: ET.Element) -> None:
    """The rules of the JUnit schema Jenkins and GitLab read (its required attributes and
    types, the children a testcase may have), and counts that add up."""
    assert root.tag == "testsuites"
    suites = list(root)
    assert suites and all(suite.tag == "testsuite" for suite in suites)
    for element in (root, *suites):
        for key in ("tests", "failures", "errors", "skipped"):
            assert element.get(key, "").isdigit(), (element.tag, key)
        assert DECIMAL.match(element.get("time", "")), element.attrib
    for suite in suites:
        assert suite.get("name")
        cases = list(suite)
        assert all(case.tag == "testcase" for case in cases)
        assert int(suite.get("tests", -1)) == len(cases)
        assert int(suite.get("failures", -1)) == len(suite.findall("testcase/failure"))
        assert int(suite.get("skipped", -1)) == len(suite.findall("testcase/skipped"))
        for case in cases:
            assert case.get("name") and case.get("classname")
            assert DECIMAL.match(case.get("time", "")), case.attrib
            assert {child.tag for child in case} <= CASE_CHILDREN
            for failure in case.findall("failure"):
                assert failure.get("message") and failure.get("type")
    for key in ("tests", "failures", "skipped"):
        assert int(root.get(key, -1)) == sum(int(s.get(key, 0)) for s in suites)


def test_junit_report_matches_the_recap(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = private_data_dir(tmp_path / "junit")
    runner = containerrunner.run(private_data_dir=pdd, playbook="site.yml", quiet=True, **where)
    root = ET.parse(Path(runner.artifact_dir) / "junit.xml").getroot()
    check_junit(root)
    stats = runner.stats
    assert stats is not None
    failed = sum(stats["failures"].values()) + sum(stats["dark"].values())
    assert (int(root.get("failures", -1)), int(root.get("skipped", -1))) == (
        failed,
        sum(stats["skipped"].values()),
    )
    [failure] = root.findall(".//testcase/failure")
    assert failure.get("type") == "unreachable"
    assert "[gone] first" in [c.get("name") for c in root.iter("testcase") if len(c)]
    assert int(root.get("tests", -1)) == 4 + 3 + 3 + 1 + 3 + 3  # gone ran only `first`


def test_the_same_summary_from_ansible_runners_artifacts(tmp_path: Path) -> None:
    pdd = private_data_dir(tmp_path / "theirs")
    theirs = ansible_runner.run(private_data_dir=pdd, playbook="site.yml", quiet=True)
    assert theirs.rc == 4
    assert shape(load(theirs.config.artifact_dir)) == EXPECTED


def test_results_of_a_run_in_progress(tmp_path: Path) -> None:
    """task_results() while the job runs: what has happened so far."""
    pdd = private_data_dir(tmp_path / "live")
    seen: list[list[tuple[str, dict[str, list[str]]]]] = []
    runners: list[containerrunner.Runner] = []

    def on_event(event: dict[str, Any]) -> bool:
        if event["event"] == "playbook_on_task_start" and event["event_data"]["task"] == "recover":
            seen.append(shape(runners[0].task_results()))
        return True

    config = containerrunner.RunnerConfig(private_data_dir=pdd, playbook="site.yml", quiet=True)
    config.prepare()
    runner = containerrunner.Runner(config, event_handler=on_event)
    runners.append(runner)
    runner.start().join(300)
    assert runner.status == "failed"
    [so_far] = seen
    assert [name for name, _ in so_far] == ["first", "maybe fail", "breaks", "recover"]
    # no recap yet and the host has not gone on: its failure counts as failed so far
    assert so_far[2][1]["failed"] == ["rescuer"]
    assert shape(runner.task_results()) == EXPECTED  # and as rescued once the job ended


def test_progress_handler_sees_every_result(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = private_data_dir(tmp_path / "progress")
    seen: list[containerrunner.Progress] = []
    runner = containerrunner.run(
        private_data_dir=pdd, playbook="site.yml", quiet=True, progress_handler=seen.append,
        **where,
    )  # fmt: skip
    results = [e for e in runner.events if e["event"].startswith("runner_on_")
               and e["event"] != "runner_on_start"]  # fmt: skip
    last = seen[-1]
    # failed: gone (unreachable) and rescuer (its failure counts when it happens)
    assert (last.completed, last.total, last.failed) == (len(results), len(results), 2)
    assert last.play == "Main" and last.running == ()
    completed = [p.completed for p in seen]
    assert completed == sorted(completed) and all(p.completed <= p.total for p in seen)
    assert runner.progress() == last or runner.progress().completed == last.completed


def test_provenance_records_the_inputs_and_the_ansible_core_version(
    where: dict[str, Any], tmp_path: Path
) -> None:
    import hashlib
    from importlib.metadata import version

    pdd = private_data_dir(tmp_path / "prov")
    runner = containerrunner.run(
        private_data_dir=pdd, playbook="site.yml", extravars={"x": 1}, quiet=True, **where
    )
    record = json.loads((Path(runner.artifact_dir) / "provenance.json").read_text())
    inputs = record["inputs"]
    playbook = Path(pdd) / "project" / "site.yml"
    inventory = Path(pdd) / "inventory" / "hosts"
    assert inputs["playbook"] == {str(playbook): hashlib.sha256(playbook.read_bytes()).hexdigest()}
    assert inputs["inventory"][str(inventory)] == hashlib.sha256(inventory.read_bytes()).hexdigest()
    assert len(inputs["extravars"]) == 1  # the generated extravars file (its content's hash)
    if where["process_isolation"]:  # the EE's ansible-core, reported from inside the container
        assert re.fullmatch(r"2\.\d+\.\d+", record["ansible_core"]), record
    else:
        assert record["ansible_core"] == version("ansible-core")
