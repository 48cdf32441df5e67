"""A job's output as ansible-runner's users know it, side by side with ansible-runner 2.4.3 on
the host: lines printed before Ansible loads the callback are `verbose` events numbered before
the callback's; `quiet` and `json_mode`; `runner_mode='subprocess'` and
`suppress_output_file` on run(); `omit_event_data` with `Runner.stats` still there."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

import containerrunner
from tests.integration.support import (
    LOCAL_VARS,
    ansible_on_path,  # noqa: F401  (an autouse fixture)
)

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      debug: msg=hello
"""
# a YAML error: ansible-playbook fails before it loads any callback
BROKEN = "- hosts: all\n  tasks: [ {debug: msg=x}\n"
# a warning printed (on stderr) while the plugin runs
NO_MATCH = "- hosts: nosuchgroup\n  gather_facts: false\n  tasks: [{debug: {msg: never}}]\n"


def private_data_dir(root: Path, **playbooks: str) -> str:
    (root / "project").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "inventory" / "hosts").write_text(f"web1 {LOCAL_VARS}\n")
    for name, text in playbooks.items():
        (root / "project" / f"{name}.yml").write_text(text)
    return str(root)


def both(tmp_path: Path, where: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """{'ours': Runner, 'theirs': ansible-runner's Runner (on the host only)} for run(**kwargs)."""
    playbooks = {"site": PLAYBOOK, "broken": BROKEN, "nomatch": NO_MATCH}
    runs = {}
    for name, module in (("ours", containerrunner), ("theirs", ansible_runner)):
        if module is ansible_runner and where["process_isolation"]:
            continue
        pdd = private_data_dir(tmp_path / name, **playbooks)
        extra = where if module is containerrunner else {}
        runs[name] = module.run(private_data_dir=pdd, **kwargs, **extra)
    return runs


def lines_of(events: list[dict[str, Any]]) -> list[str]:
    """The events' output lines, the two runs' own dir names made alike."""
    text = "\n".join(e["stdout"] for e in events).replace("\r", "")
    return text.replace("/ours/", "/RUN/").replace("/theirs/", "/RUN/").split("\n")


def assert_numbered(events: list[dict[str, Any]]) -> None:
    """Counters 1..n; each event's lines start where the previous event's ended."""
    assert [e["counter"] for e in events] == list(range(1, len(events) + 1))
    for before, after in itertools.pairwise(events):
        assert after["start_line"] == before["end_line"], (before, after)


def test_output_before_the_plugin_is_verbose_events(where: dict[str, Any], tmp_path: Path) -> None:
    """A YAML error comes before any callback: its lines are `verbose` events, as in
    ansible-runner (and what ansible-navigator shows of a broken playbook)."""
    runs = both(tmp_path, where, playbook="broken.yml", quiet=True)
    for runner in runs.values():
        assert (runner.status, runner.rc) == ("failed", 4)
        events = list(runner.events)
        assert {e["event"] for e in events} == {"verbose"}
        assert "broken.yml" in "\n".join(lines_of(events))
    ours = list(runs["ours"].events)
    assert_numbered(ours)
    assert "\x1b_" not in runs["ours"].stdout.read()  # the plugin's mark never shows
    if "theirs" in runs:
        assert lines_of(ours) == lines_of(list(runs["theirs"].events))


def test_warnings_before_the_plugin_come_first_then_its_events(
    where: dict[str, Any], tmp_path: Path
) -> None:
    """`-i` of a missing file: Ansible warns before it loads the callback; those lines are
    verbose events 1..k and the callback's events follow, numbered after them."""
    missing = str(tmp_path / "no-such-inventory")
    runs = both(tmp_path, where, playbook="site.yml", cmdline=f"-i {missing}", quiet=True)
    shapes = {}
    for name, runner in runs.items():
        events = list(runner.events)
        first = next(i for i, e in enumerate(events) if e["event"] != "verbose")
        assert first > 0 and events[first]["event"] == "playbook_on_start", events[:3]
        assert "no-such-inventory" in "\n".join(lines_of(events[:first]))
        shapes[name] = [e["event"] for e in events]
    assert_numbered(list(runs["ours"].events))
    if "theirs" in shapes:
        assert shapes["ours"] == shapes["theirs"]


def test_quiet_false_echoes_the_output_as_ansible_runner(tmp_path: Path, capfd: Any) -> None:
    echoed = {}
    for quiet in (False, True):
        runs = both(tmp_path / str(quiet), {"process_isolation": False}, playbook="site.yml",
                    quiet=quiet)  # fmt: skip
        echoed[quiet] = capfd.readouterr().out
        for runner in runs.values():
            assert runner.rc == 0
    assert echoed[False].count("PLAY RECAP") == 2  # ours and ansible-runner's
    assert echoed[True] == ""
    out, _err, rc = containerrunner.run_command("echo", ["from run_command"])
    assert (rc, capfd.readouterr().out) == (0, "from run_command\n")  # the helpers echo too
    assert out == "from run_command\n"


def test_json_mode_prints_events_as_json_lines(where: dict[str, Any], tmp_path: Path) -> None:
    """json_mode: the stdout artifact has one JSON event per line in place of the text."""
    runs = both(tmp_path, where, playbook="site.yml", json_mode=True, quiet=True)
    for runner in runs.values():
        assert runner.rc == 0
        lines = [json.loads(line) for line in runner.stdout.read().splitlines() if line.strip()]
        events = list(runner.events)
        assert [e["event"] for e in lines] == [e["event"] for e in events]
        assert [e["counter"] for e in lines] == [e["counter"] for e in events]
        assert any("say hello" in e["stdout"] for e in lines)


def test_omit_event_data_strips_every_event_and_keeps_the_stats(
    where: dict[str, Any], tmp_path: Path
) -> None:
    runs = both(tmp_path, where, playbook="site.yml", omit_event_data=True, quiet=True)
    for runner in runs.values():
        assert runner.rc == 0
        assert all(not e.get("event_data") for e in runner.events)  # the stats event too
    ours = runs["ours"]
    assert ours.stats is not None and ours.stats["ok"] == {"web1": 1}
    recap = json.loads((Path(ours.artifact_dir) / "stats.json").read_text())
    assert recap == ours.stats


def test_only_failed_event_data(where: dict[str, Any], tmp_path: Path) -> None:
    fails = "- hosts: all\n  gather_facts: false\n  tasks: [{fail: {msg: boom}}]\n"
    root = private_data_dir(tmp_path / "pdd", fails=fails)
    runner = containerrunner.run(
        private_data_dir=root, playbook="fails.yml", only_failed_event_data=True, quiet=True,
        **where,
    )  # fmt: skip
    assert runner.rc == 2
    with_data = {e["event"] for e in runner.events if e.get("event_data")}
    assert with_data == {"runner_on_failed"}
    assert runner.stats is not None and runner.stats["failures"] == {"web1": 1}


def test_runner_mode_subprocess_keeps_stderr_apart(where: dict[str, Any], tmp_path: Path) -> None:
    """runner_mode='subprocess' on run(): Ansible's warnings (stderr) stay apart from stdout;
    the default (pexpect) merges them. ansible-runner's run() has no runner_mode (a TypeError):
    its run_command of ansible-playbook, which has one, is the reference."""
    warning = "Could not match supplied host pattern"
    for mode in ("subprocess", "pexpect"):
        pdd = private_data_dir(tmp_path / mode, nomatch=NO_MATCH)
        ours = containerrunner.run(
            private_data_dir=pdd, playbook="nomatch.yml", runner_mode=mode, quiet=True, **where
        )
        outputs = [(ours.rc, ours.stdout.read(), ours.stderr.read())]
        if not where["process_isolation"] and mode == "subprocess":  # theirs needs a stdin
            ref = str(tmp_path / f"ref-{mode}")
            os.mkdir(ref)
            out, err, rc = ansible_runner.run_command(
                "ansible-playbook", ["-i", str(Path(pdd) / "inventory"), "nomatch.yml"],
                private_data_dir=ref, host_cwd=str(Path(pdd) / "project"), runner_mode=mode,
                quiet=True,
            )  # fmt: skip
            outputs.append((rc, out, err))
        for rc, out, err in outputs:
            assert rc == 0 and "PLAY RECAP" in out, (mode, out, err)
            if mode == "subprocess":
                assert warning in err and warning not in out, (err, out)
            else:
                assert warning in out and err == "", err
        events = list(ours.events)
        assert any(warning in e["stdout"] for e in events)
        assert_numbered(events)


def test_suppress_output_file_as_a_keyword(tmp_path: Path) -> None:
    root = private_data_dir(tmp_path / "pdd", site=PLAYBOOK)
    runner = containerrunner.run(
        private_data_dir=root, playbook="site.yml", suppress_output_file=True, quiet=True
    )
    assert runner.rc == 0
    assert runner.stdout.read() == ""
    assert any(e["event"] == "runner_on_ok" for e in runner.events)
