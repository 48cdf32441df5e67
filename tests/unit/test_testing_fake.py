"""containerrunner.testing as a caller uses it: a small deploy module of the caller's (below)
tested with only the public fake, no container and no Ansible."""

from __future__ import annotations

from typing import Any

import pytest

import containerrunner
from containerrunner.testing import FakeRuns, fake_runs, playbook_events


# ---- the caller's code under test -------------------------------------------------------------
def deploy(playbook: str, hosts: list[str]) -> dict[str, Any]:
    """Runs the playbook in the EE; returns what went wrong, per host."""
    runner = containerrunner.run(
        playbook=[{"hosts": "all", "gather_facts": False, "tasks": [{"import_tasks": playbook}]}],
        inventory={"all": {"hosts": {host: {} for host in hosts}}},
        process_isolation=True,
        container_image="registry.example/ee:1",
        quiet=True,
    )
    summary = runner.task_results()
    return {
        "status": runner.status,
        "rc": runner.rc,
        "failed": {h: s.failed_tasks for h, s in summary.hosts.items() if s.failed_tasks},
        "unreachable": sorted(h for h, s in summary.hosts.items() if s.state == "unreachable"),
    }


def plugin_version(name: str) -> str:
    docs, _err = containerrunner.get_plugin_docs([name], response_format="json", quiet=True)
    return str(docs[name]["doc"].get("version_added", "?"))


# ---- the caller's tests -----------------------------------------------------------------------
def test_deploy_reports_failed_and_unreachable_hosts(containerrunner_fake: FakeRuns) -> None:
    containerrunner_fake.script(
        rc=2,
        events=playbook_events(
            {"install": {"web1": "changed", "web2": "failed", "db1": "unreachable"},
             "start": {"web1": "ok"}}
        ),
    )  # fmt: skip
    result = deploy("site", ["web1", "web2", "db1"])
    assert result == {
        "status": "failed",
        "rc": 2,
        "failed": {"web2": ["install"]},
        "unreachable": ["db1"],
    }
    [call] = containerrunner_fake.calls
    assert call.helper == "run" and call.arguments["container_image"] == "registry.example/ee:1"
    [job] = containerrunner_fake.jobs
    assert job.command[0] == "ansible-playbook"


def test_a_timed_out_deploy(containerrunner_fake: FakeRuns) -> None:
    containerrunner_fake.script(status="timeout")
    assert deploy("site", ["web1"])["status"] == "timeout"


def test_utility_helpers_get_the_scripted_output() -> None:
    with fake_runs() as fake:
        fake.script(stdout='{"ping": {"doc": {"version_added": "historical"}}}')
        assert plugin_version("ping") == "historical"
    assert [c.helper for c in fake.calls] == ["get_plugin_docs"]
    assert fake.calls[0].arguments["plugin_names"] == ["ping"]
    assert fake.jobs[0].command[:1] == ("ansible-doc",)


def test_bad_arguments_still_fail_as_for_real(containerrunner_fake: FakeRuns) -> None:
    with pytest.raises(containerrunner.ConfigurationError, match="forks"):
        containerrunner.run(playbook=[{"hosts": "all", "tasks": []}], forks="many")
    assert containerrunner_fake.jobs == []


def test_the_runner_is_as_before_once_the_fake_is_gone() -> None:
    from containerrunner.runner import Runner

    names = ("process_runner", "engine_resolver", "program_resolver")
    before = {name: Runner.__dict__[name] for name in names}
    with fake_runs():
        pass
    assert {name: Runner.__dict__[name] for name in names} == before
    assert all(isinstance(value, staticmethod) for value in before.values())
