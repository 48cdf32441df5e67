"""run() / run_async(): playbooks, ad-hoc modules and roles on the host, in podman and docker."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.conftest import EE_IMAGE, our_containers
from tests.integration.support import (
    assert_secret_nowhere,
    container_kwargs,
    copy_examples,
    event_shape,
    make_ssh_key,
    make_vault,
)

pytestmark = pytest.mark.integration


def test_demo_playbook(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    statuses: list[str] = []
    seen: list[dict[str, Any]] = []
    finished: list[Any] = []
    artifacts: list[str] = []
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="site.yml",
        status_handler=lambda data, runner_config: statuses.append(data["status"]),
        event_handler=lambda e: seen.append(e) is None, finished_callback=finished.append,
        artifacts_handler=artifacts.append, **where,
    )  # fmt: skip
    assert (r.status, r.rc) == ("successful", 0)
    assert statuses[0] == "starting" and statuses[1] == "running" and statuses[-1] == "successful"
    assert finished == [r] and artifacts == [r.config.artifact_dir]
    events = list(r.events)
    counters = [e["counter"] for e in events]
    assert counters == sorted(counters) == list(range(1, len(events) + 1))
    assert [e["counter"] for e in seen] == counters
    names = [e["event"] for e in events]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert names.count("playbook_on_task_start") == 5
    assert r.stats is not None
    assert r.stats["ok"] == {"web1": 4, "web2": 4, "db1": 5}
    assert r.stats["changed"] == {"web1": 1, "web2": 1, "db1": 1}
    assert r.stats["skipped"] == {"web1": 1, "web2": 1}
    assert r.stats["ignored"] == {"web2": 1}
    web2 = [e["event"] for e in r.host_events("web2")]
    assert "runner_on_failed" in web2
    failed = next(e for e in r.host_events("web2") if e["event"] == "runner_on_failed")
    assert failed["event_data"]["ignore_errors"] is True
    assert "containerrunner demo finished" in r.stdout.read()
    art = Path(r.config.artifact_dir)
    assert (art / "status").read_text() == "successful" and (art / "rc").read_text() == "0"
    command = json.loads((art / "command").read_text())
    assert command["command"][0] == "ansible-playbook"
    provenance = json.loads((art / "provenance.json").read_text())
    if where["process_isolation"]:
        assert provenance["engine"] == where["process_isolation_executable"]
        assert provenance["image_id"].startswith("sha256:")


def test_adhoc_module(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    r = containerrunner.run(
        private_data_dir=str(pdd), host_pattern="web", module="command",
        module_args="echo adhoc-{{ inventory_hostname }}", **where,
    )  # fmt: skip
    assert r.status == "successful", r.stdout.read()
    oks = [e for e in r.events if e["event"] == "runner_on_ok"]
    assert sorted(e["event_data"]["host"] for e in oks) == ["web1", "web2"]
    assert {e["event_data"]["res"]["stdout"] for e in oks} == {"adhoc-web1", "adhoc-web2"}


def test_role(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    tasks = pdd / "project" / "roles" / "hello" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("- debug: {msg: 'role says {{ word }}'}\n")
    r = containerrunner.run(
        private_data_dir=str(pdd), role="hello", role_vars={"word": "bonjour"},
        role_skip_facts=True, host_pattern="db", **where,
    )  # fmt: skip
    assert r.status == "successful", r.stdout.read()
    assert "role says bonjour" in r.stdout.read()
    assert r.stats is not None and r.stats["ok"] == {"db1": 1}


def test_tags_limit_extravars_cmdline(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "tagged.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - debug: {msg: 'first {{ word }} {{ other }}'}\n      tags: [one]\n"
        "    - debug: {msg: second}\n      tags: [two]\n"
    )
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="tagged.yml", tags="one", limit="web1",
        extravars={"word": "from-kwargs"}, cmdline="-e other=from-cmdline", **where,
    )  # fmt: skip
    assert r.status == "successful", r.stdout.read()
    out = r.stdout.read()
    assert "first from-kwargs from-cmdline" in out and "second" not in out
    assert r.stats is not None and r.stats["ok"] == {"web1": 1}


def test_failed_playbook(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "fail.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n    - fail: {msg: boom}\n"
    )
    r = containerrunner.run(private_data_dir=str(pdd), playbook="fail.yml", **where)
    assert r.status == "failed" and r.rc == 2
    assert r.stats is not None and r.stats["failures"] == {"db1": 1}


@pytest.mark.parametrize("how", ["cancel", "job_timeout", "idle_timeout"])
def test_cancel_and_timeouts(how: str, no_leftover_containers: Engine, tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "slow.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n"
        "    - name: slow task\n      command: sleep 600\n"
    )
    started = threading.Event()

    def on_event(event: dict[str, Any]) -> bool:
        if event["event"] == "runner_on_start":
            started.set()
        return True

    kwargs: dict[str, Any] = {"timeout": 20} if how == "job_timeout" else {}
    if how == "idle_timeout":
        kwargs["idle_timeout"] = 10
    thread, r = containerrunner.run_async(
        private_data_dir=str(pdd), playbook="slow.yml", event_handler=on_event,
        **kwargs, **container_kwargs(no_leftover_containers),
    )  # fmt: skip
    assert started.wait(120), "the slow task never started"
    if how == "cancel":
        r.cancel()
    thread.join(120)
    assert not thread.is_alive()
    assert r.status == ("canceled" if how == "cancel" else "timeout")
    assert (Path(r.config.artifact_dir) / "status").read_text() == r.status


def test_rotate_artifacts(tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    for i in range(3):
        containerrunner.run(
            private_data_dir=str(pdd), playbook="site.yml", ident=f"job{i}", rotate_artifacts=2
        )
    assert sorted(p.name for p in (pdd / "artifacts").iterdir()) == ["job1", "job2"]


def test_fact_cache(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "facts.yml").write_text(
        "- hosts: db1\n  gather_facts: true\n  gather_subset: [min]\n  tasks:\n"
        "    - set_fact: {planet: mars, cacheable: true}\n"
    )
    r = containerrunner.run(private_data_dir=str(pdd), playbook="facts.yml", **where)
    assert r.status == "successful", r.stdout.read()
    facts = r.get_fact_cache("db1")
    assert facts["planet"] == "mars"
    assert facts["ansible_system"] == "Linux"
    r.set_fact_cache("db1", {"planet": "venus"})
    assert r.get_fact_cache("db1") == {"planet": "venus"}


def test_fact_cache_dir_name_takes_effect(tmp_path: Path) -> None:
    """`fact_cache` names the cache dir in artifacts/<ident>/, as in ansible-runner."""
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "facts.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n"
        "    - set_fact: {planet: mars, cacheable: true}\n"
    )
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="facts.yml", ident="fc", fact_cache="my_cache"
    )
    assert r.status == "successful", r.stdout.read()
    assert r.get_fact_cache("db1")["planet"] == "mars"
    assert any((pdd / "artifacts" / "fc" / "my_cache").iterdir())
    assert not (pdd / "artifacts" / "fc" / "fact_cache").exists()


def test_passwords_answer_vars_prompt_and_vault(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    vaulted = make_vault("vault-open", "Vault-Pw-9931", tmp_path)
    (pdd / "project" / "prompt.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n"
        "  vars_prompt:\n    - name: favourite\n      prompt: Favourite colour\n"
        "      private: true\n"
        "  vars:\n    hidden: " + vaulted + "\n"
        "  tasks:\n    - debug: {msg: 'colour={{ favourite | length }} {{ hidden }}'}\n"
    )
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="prompt.yml", cmdline="--ask-vault-pass",
        passwords={"Favourite colour": "Prompt-Answer-5521", "Vault password.*:": "Vault-Pw-9931"},
        **where,
    )  # fmt: skip
    out = r.stdout.read()
    assert r.status == "successful", out
    assert "colour=18 vault-open" in out
    assert_secret_nowhere("Prompt-Answer-5521", pdd)
    assert_secret_nowhere("Vault-Pw-9931", pdd)


def test_secrets_land_in_no_file(where: dict[str, Any], tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    key_text = make_ssh_key(tmp_path)
    (pdd / "project" / "env.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n"
        "    - shell: test $(printenv API_TOKEN | wc -c) -eq 16 && ssh-add -l\n"
        "      changed_when: false\n"
    )
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="env.yml", envvars={"API_TOKEN": "Env-Secret-8812"},
        ssh_key=key_text, **where,
    )  # fmt: skip
    assert r.status == "successful", r.stdout.read()
    assert_secret_nowhere("Env-Secret-8812", pdd)
    key_body = key_text.splitlines()[2]
    assert_secret_nowhere(key_body, pdd)
    assert not (pdd / "env" / "envvars").exists() and not (pdd / "env" / "ssh_key").exists()


def test_async_events_stream_while_running(tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    thread, r = containerrunner.run_async(private_data_dir=str(pdd), playbook="site.yml")
    names = [e["event"] for e in r.events]
    thread.join(60)
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"


def test_event_handler_can_drop_events(tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    r = containerrunner.run(
        private_data_dir=str(pdd), playbook="site.yml",
        event_handler=lambda e: e["event"] != "runner_on_skipped",
    )  # fmt: skip
    assert "runner_on_skipped" not in [e["event"] for e in r.events]
    assert r.stats is not None and r.stats["skipped"] == {"web1": 1, "web2": 1}


def test_runner_config_compose(tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    rc = containerrunner.RunnerConfig(private_data_dir=str(pdd), playbook="site.yml", limit="db1")
    rc.prepare()
    r = containerrunner.Runner(config=rc)
    status, code = r.run()
    assert (status, code) == ("successful", 0)
    assert r.stats is not None and set(r.stats["ok"]) == {"db1"}


@pytest.mark.parametrize(
    "change, kwargs, match",
    [
        (None, {"playbook": "missing.yml"}, "missing.yml"),
        ("extravars", {"playbook": "site.yml"}, "extravars"),
        (None, {"role": "no_such_role"}, "no_such_role"),
        (None, {"playbook": "site.yml", "ident": "../escape"}, "ident"),
        (None, {"playbook": "site.yml", "ident": "a/b"}, "ident"),
    ],
)
def test_bad_input_is_refused_and_earlier_artifacts_survive(
    tmp_path: Path, change: str | None, kwargs: dict[str, Any], match: str
) -> None:
    pdd = copy_examples(tmp_path)
    first = containerrunner.run(private_data_dir=str(pdd), playbook="site.yml", ident="first")
    before = {p: p.read_bytes() for p in Path(first.config.artifact_dir).rglob("*") if p.is_file()}
    if change == "extravars":
        (pdd / "env" / "extravars").write_text("greeting: [unclosed\n")
    with pytest.raises(containerrunner.ConfigurationError, match=match):
        containerrunner.run(private_data_dir=str(pdd), **kwargs)
    after = {p: p.read_bytes() for p in Path(first.config.artifact_dir).rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in (pdd / "artifacts").iterdir()) == ["first"]


def test_missing_image(engine: Engine, tmp_path: Path) -> None:
    pdd = copy_examples(tmp_path)
    with pytest.raises(containerrunner.ImageNotFoundError, match="scripts/build-images"):
        containerrunner.run(
            private_data_dir=str(pdd), playbook="site.yml",
            **container_kwargs(engine, "localhost/absent-image:0"),
        )  # fmt: skip
    assert not (pdd / "artifacts").exists() or not any((pdd / "artifacts").iterdir())


def test_failure_before_start_ends_the_lifecycle(engine: Engine, tmp_path: Path) -> None:
    """A job that cannot start is `failed`, leaves no runtime dir, and ends `events`."""
    pdd = copy_examples(tmp_path)
    rc = containerrunner.RunnerConfig(
        private_data_dir=str(pdd), playbook="site.yml",
        **container_kwargs(engine, "localhost/absent-image:0"),
    )  # fmt: skip
    rc.prepare()
    assert rc.job is not None and rc.job.runtime_dir is not None
    runner = containerrunner.Runner(config=rc)
    with pytest.raises(containerrunner.ImageNotFoundError):
        runner.run()
    assert runner.status == "failed"
    assert not os.path.exists(rc.job.runtime_dir)
    assert list(runner.events) == []


def test_same_events_as_ansible_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing ansible-runner private data dir gives the same events as ansible-runner."""
    ansible_runner = pytest.importorskip("ansible_runner")
    # ansible-runner finds ansible-playbook on PATH only: put this Python's bin/ first.
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    ours_dir = copy_examples(tmp_path / "ours")
    theirs_dir = copy_examples(tmp_path / "theirs")
    ours = containerrunner.run(private_data_dir=str(ours_dir), playbook="site.yml")
    theirs = ansible_runner.run(private_data_dir=str(theirs_dir), playbook="site.yml", quiet=True)

    assert theirs.status == ours.status == "successful"
    assert event_shape(ours.events) == event_shape(theirs.events)
    assert ours.stats == theirs.stats


def test_run_pinned_to_the_image_id(engine: Engine, tmp_path: Path) -> None:
    """`container_image` may be a bare image ID: the job runs that content and provenance.json
    says the ID run matched the pin; an absent pinned ID with pull="never" fails, runs nothing."""
    from containerrunner.isolation.images import image_digest

    image_id = image_digest(engine, EE_IMAGE)
    assert image_id is not None
    pdd = copy_examples(tmp_path)
    runner = containerrunner.run(
        private_data_dir=str(pdd), playbook="site.yml", quiet=True, pull="never",
        **container_kwargs(engine, image_id.removeprefix("sha256:")[:12]),
    )  # fmt: skip
    assert runner.status == "successful"
    record = json.loads((Path(runner.artifact_dir) / "provenance.json").read_text())
    assert (record["image_id"], record["image_pinned"], record["image_pin_matched"]) == (
        image_id,
        True,
        True,
    )
    absent = "sha256:" + "0" * 64
    with pytest.raises(containerrunner.ImageNotFoundError, match=absent):
        containerrunner.run(
            private_data_dir=str(pdd), playbook="site.yml", pull="never",
            **container_kwargs(engine, absent),
        )  # fmt: skip
    assert our_containers(engine, os.getpid()) == []
