"""run_command as ansible-runner's users know it, run side by side with ansible-runner 2.4.3
where it can run the same inputs (on the host): events of Ansible programs, the private data
dir's env/ inputs, rc 254 for a stopped job, ident reuse, event_handler's return value."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

import containerrunner
from tests.integration.support import (
    LOCAL_VARS,
    Watcher,
    ansible_on_path,  # noqa: F401  (an autouse fixture)
    event_shape,
)

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      debug: msg=hello
    - name: change something
      command: echo changed
"""


def content(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "hosts").write_text(f"web1 {LOCAL_VARS}\nweb2 {LOCAL_VARS}\n")
    return tmp_path / "site.yml", tmp_path / "hosts"


def collect(into: list[dict[str, Any]]) -> Any:
    def handler(event: dict[str, Any]) -> bool:
        into.append(event)
        return True

    return handler


def test_run_command_of_ansible_playbook_gives_events(
    where: dict[str, Any], tmp_path: Path
) -> None:
    playbook, hosts = content(tmp_path)
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    seen: list[dict[str, Any]] = []
    args = [str(playbook), "-i", str(hosts)]
    thread, runner = containerrunner.run_command_async(
        "ansible-playbook", args, private_data_dir=str(pdd), host_cwd=str(tmp_path),
        event_handler=collect(seen), **where,
    )  # fmt: skip
    thread.join(300)
    assert runner.rc == 0, runner.stdout.read()
    events = list(runner.events)
    assert [e["counter"] for e in seen] == [e["counter"] for e in events]
    files = sorted((Path(runner.artifact_dir) / "job_events").iterdir())
    assert len(files) == len(events)
    names = [e["event"] for e in events]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert runner.stats is not None and runner.stats["changed"] == {"web1": 1, "web2": 1}
    assert "say hello" in runner.stdout.read()  # Ansible's output is still there

    if not where["process_isolation"]:  # ansible-runner on the same inputs
        theirs: list[dict[str, Any]] = []
        ar_pdd = tmp_path / "ar"
        ar_pdd.mkdir()
        _out, _err, rc = ansible_runner.run_command(
            "ansible-playbook", args, private_data_dir=str(ar_pdd), host_cwd=str(tmp_path),
            event_handler=collect(theirs),
        )  # fmt: skip
        assert rc == 0
        assert event_shape(events) == event_shape(theirs)


def test_run_command_of_ansible_adhoc_gives_events(tmp_path: Path) -> None:
    """Deliberately more than ansible-runner: its run_command("ansible", ...) gives only
    `verbose` events (it loads no callback for ad-hoc commands); ours gives the events its
    run(module=...) gives for the same ad-hoc command."""
    _playbook, hosts = content(tmp_path)
    ours: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] = []
    args = ["all", "-i", str(hosts), "-m", "ping"]
    for run, into in ((containerrunner.run_command, ours), (ansible_runner.run_command, plain)):
        pdd = tmp_path / f"pdd-{len(ours)}-{len(plain)}"
        pdd.mkdir()
        _out, _err, rc = run(
            "ansible", args, private_data_dir=str(pdd), host_cwd=str(tmp_path),
            event_handler=collect(into),
        )  # fmt: skip
        assert rc == 0
    assert {e["event"] for e in plain} == {"verbose"}
    ar_pdd = tmp_path / "ar-run"
    ar_pdd.mkdir()
    r = ansible_runner.run(
        private_data_dir=str(ar_pdd), host_pattern="all", module="ping", inventory=str(hosts),
        event_handler=collect(reference), quiet=True,
    )  # fmt: skip
    assert r.rc == 0
    ok = [e["event_data"]["host"] for e in ours if e["event"] == "runner_on_ok"]
    assert sorted(ok) == ["web1", "web2"]
    assert [e for e in event_shape(ours)[1]] == [e for e in event_shape(reference)[1]]


def env_files(pdd: Path, **files: Any) -> None:
    (pdd / "env").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (pdd / "env" / name).write_text(json.dumps(data))


def test_run_command_reads_the_private_data_dir(where: dict[str, Any], tmp_path: Path) -> None:
    """env/envvars and env/passwords count for run_command as for run(), here and in
    ansible-runner; here an explicit keyword argument wins over the file."""
    script = 'printf "Token: "; read t; echo "got $t with $FROM_FILE and $GIVEN"'
    results = []
    for run in (containerrunner.run_command, ansible_runner.run_command):
        if run is ansible_runner.run_command and where["process_isolation"]:
            continue
        pdd = tmp_path / f"pdd{len(results)}"
        env_files(pdd, envvars={"FROM_FILE": "file-value", "GIVEN": "file"},
                  passwords={"^Token: ": "t0k3n"})  # fmt: skip
        out, _err, rc = run(
            "sh", ["-c", script], private_data_dir=str(pdd), envvars={"GIVEN": "kwarg"},
            host_cwd=str(tmp_path), **(where if run is containerrunner.run_command else {}),
        )  # fmt: skip
        found = re.search(r"got .*", out)
        results.append((rc, found.group(0).strip() if found else out))
    assert results[0] == (0, "got t0k3n with file-value and kwarg")
    if len(results) > 1:  # ansible-runner lets env/envvars win over the keyword argument
        assert results[1] == (0, "got t0k3n with file-value and file")  # (docs/python-api.md)


def test_a_canceled_command_ends_with_rc_254_as_in_ansible_runner(tmp_path: Path) -> None:
    rcs = []
    for run in (containerrunner.run_command, ansible_runner.run_command):
        ready = Watcher("ready")
        pdd = tmp_path / f"pdd{len(rcs)}"
        pdd.mkdir()
        _out, _err, rc = run(
            "sh", ["-c", "echo ready; sleep 600"], private_data_dir=str(pdd),
            host_cwd=str(tmp_path), output_fd=ready, runner_mode="subprocess",
            cancel_callback=ready.seen.is_set,
        )  # fmt: skip
        rcs.append(rc)
    assert rcs == [254, 254]


def test_reusing_an_ident_replaces_its_artifacts(tmp_path: Path) -> None:
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    for word in ("first", "second"):
        out, _err, rc = containerrunner.run_command(
            "echo", [word], private_data_dir=str(pdd), ident="same", host_cwd=str(tmp_path)
        )
        assert (rc, out.strip()) == (0, word)
    assert (pdd / "artifacts" / "same" / "stdout").read_text().strip() == "second"


CONFIG_ATTRIBUTES = (
    "env", "command", "cwd", "artifact_dir", "ident", "private_data_dir", "container_image",
    "process_isolation",
)  # fmt: skip


def test_runner_config_attributes_callers_read(tmp_path: Path) -> None:
    """The attributes exist with ansible-runner's meaning, and a secret's value is masked."""
    seen: dict[str, list[dict[str, Any]]] = {"ours": [], "theirs": []}
    runners = {}
    for name, module in (("ours", containerrunner), ("theirs", ansible_runner)):
        pdd = tmp_path / name
        pdd.mkdir()
        thread, runner = module.run_command_async(
            "sh", ["-c", "true"], private_data_dir=str(pdd), ident="attrs",
            host_cwd=str(tmp_path), envvars={"API_TOKEN": "s3cr3t-value"},
            status_handler=lambda data, runner_config, into=seen[name]: into.append(data),
            **({"secret_envvars": ["API_TOKEN"]} if module is containerrunner else {}),
        )  # fmt: skip
        thread.join(60)
        runners[name] = runner
    for attribute in CONFIG_ATTRIBUTES:
        mine = getattr(runners["ours"].config, attribute)
        theirs = getattr(runners["theirs"].config, attribute)
        if attribute in ("artifact_dir", "private_data_dir"):
            assert Path(mine).relative_to(tmp_path / "ours") == Path(theirs).relative_to(
                tmp_path / "theirs"
            )
        elif attribute == "env":
            assert theirs["API_TOKEN"] == "s3cr3t-value"  # ansible-runner shows it
            assert mine["API_TOKEN"] == "********" and mine["PATH"] == os.environ["PATH"]
        else:
            assert mine == theirs, attribute
    starting = {name: data[0] for name, data in seen.items()}
    assert starting["ours"]["status"] == starting["theirs"]["status"] == "starting"
    assert {"command", "cwd", "env"} <= set(starting["ours"]) & set(starting["theirs"])
    assert "s3cr3t-value" not in json.dumps(starting["ours"])
