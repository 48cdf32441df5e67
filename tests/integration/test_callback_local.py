"""The callback plugin under real ansible-playbook / ansible on the host, compared with
ansible-runner 2.4.3 (test-only reference) on the same content.

ansible-playbook runs once per module (with an EventStream on the FIFO); the tests look at
what it left. The reference comparison ignores uuids, times, pids and the text of stdout
(ansible-runner reads it through a pty: CRLF line ends and colours).
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.events import EventStream, host_events, load_events, stats_from_events
from containerrunner.joboutput import ANSIBLE_VERSION_KEY, STATS_KEY

pytestmark = pytest.mark.integration

Event = dict[str, Any]

VENV_BIN = Path(sys.executable).parent
PLUGIN_DIR = Path(containerrunner.__file__).parent / "callback"
CENSORED = (
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
)
SECRET = "topsecret-4711"

INVENTORY = """\
host1 ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"
host2 ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"
"""

PLAYBOOK = f"""\
- name: Main play
  hosts: all
  gather_facts: false
  tasks:
    - name: say ok
      ansible.builtin.debug:
        msg: "hello {{{{ inventory_hostname }}}}"
    - name: change something
      ansible.builtin.command: "true"
      changed_when: true
      notify: my handler
    - name: skip on host2
      ansible.builtin.debug:
        msg: not host2
      when: inventory_hostname != 'host2'
    - name: fail ignored
      ansible.builtin.command: "false"
      ignore_errors: true
    - name: loop items
      ansible.builtin.debug:
        msg: "item {{{{ item }}}}"
      loop: [a, b]
    - name: secret
      ansible.builtin.command: "echo {SECRET}"
      no_log: true
    - name: secret loop
      ansible.builtin.debug:
        msg: "{SECRET} {{{{ item }}}}"
      loop: [1, 2]
      no_log: true
  handlers:
    - name: my handler
      ansible.builtin.debug:
        msg: handled

- name: Nobody
  hosts: nosuchgroup
  gather_facts: false
  tasks:
    - name: never
      ansible.builtin.debug:
        msg: never
"""

# a playbook whose output has no timings, to compare byte for byte with `default`
STEADY_PLAYBOOK = """\
- name: Steady
  hosts: all
  gather_facts: false
  tasks:
    - name: greet
      ansible.builtin.debug:
        msg: "hi {{ inventory_hostname }}"
    - name: skip
      ansible.builtin.debug:
        msg: never
      when: false
"""


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    artifact_dir: Path
    events: list[Event]
    fifo_events: list[Event]


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANSIBLE_", "CONTAINERRUNNER_", "AWX_", "RUNNER_"))
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_HOST_KEY_CHECKING="False",
    )
    return env


def _plugin_env(artifact_dir: Path | None, extra: dict[str, str]) -> dict[str, str]:
    env = _clean_env()
    env.update(
        ANSIBLE_CALLBACK_PLUGINS=str(PLUGIN_DIR),
        ANSIBLE_STDOUT_CALLBACK="containerrunner",
        CONTAINERRUNNER_IDENT="job-1",
    )
    if artifact_dir is not None:
        env["CONTAINERRUNNER_ARTIFACT_DIR"] = str(artifact_dir)
    env.update(extra)
    return env


def _private_data_dir(root: Path, playbook: str) -> Path:
    (root / "project").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "project" / "site.yml").write_text(playbook)
    (root / "inventory" / "hosts").write_text(INVENTORY)
    return root


def _run_plugin(
    pdd: Path,
    argv: list[str],
    artifact_dir: Path | None,
    *,
    fifo: bool = False,
    env: dict[str, str] | None = None,
) -> Run:
    env = dict(env or {})
    fifo_events: list[Event] = []
    stream = None
    if fifo:
        assert artifact_dir is not None
        artifact_dir.mkdir(parents=True, exist_ok=True)
        stream = EventStream(artifact_dir / "event_fifo")
        stream.start(fifo_events.append)
        env["CONTAINERRUNNER_EVENT_FIFO"] = str(stream.path)
    try:
        proc = subprocess.run(
            argv,
            cwd=pdd / "project",
            env=_plugin_env(artifact_dir, env),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if stream is not None:
            stream.close()
    events: list[Event] = []
    if artifact_dir is not None and (artifact_dir / "job_events").is_dir():
        events = list(load_events(artifact_dir))
    if fifo:  # with a FIFO the plugin writes no file: the runner numbers and writes them
        assert events == [], "the plugin wrote event files although the FIFO was read"
        side = (STATS_KEY, ANSIBLE_VERSION_KEY)  # the runner takes these off
        events = [{k: v for k, v in e.items() if k not in side} for e in fifo_events]
    return Run(proc, artifact_dir or Path(), events, fifo_events)


def _playbook_argv(pdd: Path) -> list[str]:
    inventory = str(pdd / "inventory" / "hosts")
    return [str(VENV_BIN / "ansible-playbook"), "-i", inventory, "--forks", "1", "site.yml"]


def _adhoc_argv(pdd: Path) -> list[str]:
    inventory = str(pdd / "inventory" / "hosts")
    return [str(VENV_BIN / "ansible"), "-i", inventory, "--forks", "1", "-m", "ping", "all"]


def _reference_run(pdd: Path, **kwargs: Any) -> list[Event]:
    ansible_runner = pytest.importorskip("ansible_runner")
    result = ansible_runner.run(
        private_data_dir=str(pdd),
        quiet=True,
        forks=1,
        envvars={"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        **kwargs,
    )
    assert result.rc == 0, result.stdout.read()
    return list(result.events)


@pytest.fixture(scope="module")
def playbook_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    pdd = _private_data_dir(tmp_path_factory.mktemp("pb"), PLAYBOOK)
    run = _run_plugin(pdd, _playbook_argv(pdd), pdd / "artifacts" / "job-1", fifo=True)
    assert run.proc.returncode == 0, run.proc.stderr
    return run


@pytest.fixture(scope="module")
def reference_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    pdd = _private_data_dir(tmp_path_factory.mktemp("ref"), PLAYBOOK)
    return _reference_run(pdd, playbook="site.yml")


def _names(events: list[Event]) -> list[str]:
    return [e["event"] for e in events]


def _by_task(events: list[Event], task: str, name: str | None = None) -> list[Event]:
    return [
        e
        for e in events
        if e["event_data"].get("task") == task and (name is None or e["event"] == name)
    ]


# ---- the plugin on its own ---------------------------------------------------------------


@pytest.fixture(scope="module")
def playbook_files_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The same playbook without a FIFO: the plugin writes the event files itself."""
    pdd = _private_data_dir(tmp_path_factory.mktemp("pbfiles"), PLAYBOOK)
    run = _run_plugin(pdd, _playbook_argv(pdd), pdd / "artifacts" / "job-1")
    assert run.proc.returncode == 0, run.proc.stderr
    return run


def test_event_files_are_numbered_and_named(playbook_files_run: Run) -> None:
    run = playbook_files_run
    events_dir = run.artifact_dir / "job_events"
    names = sorted(os.listdir(events_dir))
    assert all(re.fullmatch(r"[0-9]+-[0-9a-f-]{36}\.json", n) for n in names), names
    assert len(names) == len(run.events)
    assert [e["counter"] for e in run.events] == list(range(1, len(names) + 1))
    # forks run the tasks, but every event comes from the one controller process
    assert len({e["pid"] for e in run.events}) == 1
    for event in run.events:
        assert (events_dir / f"{event['counter']}-{event['uuid']}.json").is_file()
        assert event["runner_ident"] == "job-1"
        assert event["pid"] > 0
        assert event["created"].endswith("+00:00")
        assert STATS_KEY not in event and ANSIBLE_VERSION_KEY not in event  # FIFO lines only


def test_fifo_delivers_the_same_events_in_order(playbook_run: Run, playbook_files_run: Run) -> None:
    """With a FIFO the events come on it only (no file), numbered as the files would be;
    the stats line carries the recap aside."""
    assert [(e["counter"], e["event"]) for e in playbook_run.fifo_events] == [
        (e["counter"], e["event"]) for e in playbook_files_run.events
    ]
    assert not (playbook_run.artifact_dir / "job_events").exists()
    assert not (playbook_run.artifact_dir / "event_fifo").exists()
    stats = playbook_run.fifo_events[-1]
    assert stats["event"] == "playbook_on_stats"
    assert stats[STATS_KEY]["ok"] == stats["event_data"]["ok"] == {"host1": 8, "host2": 7}


def test_event_sequence(playbook_run: Run) -> None:
    events = playbook_run.events
    names = _names(events)
    assert names[0] == "playbook_on_start"
    assert names[1] == "playbook_on_play_start"
    assert names[-1] == "playbook_on_stats"
    for expected in (
        "playbook_on_task_start",
        "runner_on_start",
        "runner_on_ok",
        "runner_on_skipped",
        "runner_on_failed",
        "runner_item_on_ok",
        "playbook_on_notify",
        "warning",
        "playbook_on_no_hosts_matched",
    ):
        assert expected in names, expected
    # each task's runner events come after its task start
    task_starts = [e for e in events if e["event"] == "playbook_on_task_start"]
    assert [e["event_data"]["task"] for e in task_starts] == [
        "say ok",
        "change something",
        "skip on host2",
        "fail ignored",
        "loop items",
        "secret",
        "secret loop",
        "my handler",
    ]
    handler = task_starts[-1]
    assert handler["event_data"]["is_conditional"] is True
    assert handler["stdout"].strip().startswith("RUNNING HANDLER [my handler]")
    for start in task_starts:
        for event in _by_task(events, start["event_data"]["task"]):
            if event["event"].startswith("runner_"):
                assert event["counter"] > start["counter"]
                assert event["parent_uuid"] == start["event_data"]["task_uuid"]
    assert names.count("runner_item_on_ok") == 4 + 4  # loop items + secret loop, 2 hosts


def test_event_data_of_results(playbook_run: Run) -> None:
    events = playbook_run.events
    (skipped,) = [e for e in events if e["event"] == "runner_on_skipped"]
    assert (skipped["event_data"]["host"], skipped["event_data"]["task"]) == (
        "host2",
        "skip on host2",
    )
    failed = _by_task(events, "fail ignored", "runner_on_failed")
    assert sorted(e["event_data"]["host"] for e in failed) == ["host1", "host2"]
    for event in failed:
        data = event["event_data"]
        assert data["ignore_errors"] is True
        assert data["res"]["rc"] == 1
        assert data["remote_addr"] == data["host"]
        assert data["task_action"] == "ansible.builtin.command"
        assert data["task_path"].endswith("project/site.yml:16")
        assert data["duration"] >= 0
        assert data["start"] <= data["end"]
        assert "FAILED!" in event["stdout"]
        assert "...ignoring" in event["stdout"]
    (play,) = [e for e in events if e["event"] == "playbook_on_play_start"][:1]
    assert play["event_data"]["play"] == "Main play"
    assert play["event_data"]["play_pattern"] == "all"
    assert play["event_data"]["playbook"] == "site.yml"


def test_stats(playbook_run: Run) -> None:
    assert stats_from_events(playbook_run.events) == {
        "skipped": {"host2": 1},
        "ok": {"host1": 8, "host2": 7},
        "dark": {},
        "failures": {},
        "ignored": {"host1": 1, "host2": 1},
        "rescued": {},
        "processed": {"host1": 1, "host2": 1},
        "changed": {"host1": 3, "host2": 3},
    }
    host1 = host_events(playbook_run.events, "host1")
    assert host1 and all(e["event_data"]["host"] == "host1" for e in host1)
    assert {"runner_on_start", "runner_on_ok", "runner_on_failed"} <= set(_names(host1))


@pytest.mark.parametrize("which", ["fifo", "files"])
def test_no_log_is_censored(playbook_run: Run, playbook_files_run: Run, which: str) -> None:
    run = playbook_run if which == "fifo" else playbook_files_run
    for task in ("secret", "secret loop"):
        results = [e for e in _by_task(run.events, task) if "res" in e["event_data"]]
        assert results
        for event in results:
            res = event["event_data"]["res"]
            assert res == {"censored": CENSORED} or all(
                item == {"censored": CENSORED} for item in res["results"]
            )
    assert all(SECRET not in json.dumps(e) for e in run.fifo_events)
    if (run.artifact_dir / "job_events").is_dir():
        files = (run.artifact_dir / "job_events").iterdir()
        assert all(SECRET not in f.read_text() for f in files)
    assert SECRET not in run.proc.stdout


def test_human_output_is_kept_and_matches_event_stdout(playbook_run: Run) -> None:
    out = playbook_run.proc.stdout
    for text in (
        "PLAY [Main play]",
        "TASK [say ok]",
        "ok: [host1] => {",
        "changed: [host2]",
        "skipping: [host2]",
        "RUNNING HANDLER [my handler]",
        "PLAY RECAP",
    ):
        assert text in out
    # the events' stdout (trailing line ends stripped, as ansible-runner does; end_line -
    # start_line counts them) is all the output, stdout and stderr, line for line
    shown = "".join(
        e["stdout"] + "\n" * (e["end_line"] - e["start_line"] - e["stdout"].count("\n"))
        for e in playbook_run.events
    )
    lines = (out + playbook_run.proc.stderr).splitlines()
    assert sorted(shown.splitlines()) == sorted(lines)
    assert playbook_run.events[-1]["end_line"] == len(lines)
    for before, after in zip(playbook_run.events, playbook_run.events[1:], strict=False):
        assert after["start_line"] == before["end_line"]


# ---- compared with ansible-runner ----------------------------------------------------------


def _shape(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    return [(e["event"], e["event_data"].get("host"), e["event_data"].get("task")) for e in events]


def _segments(events: list[Event]) -> list[tuple[str, collections.Counter[Any]]]:
    """Events cut at each play/task start; within a segment host order is timing, not design."""
    segments: list[tuple[str, collections.Counter[Any]]] = []
    for event, host, task in _shape(events):
        if not segments or event in ("playbook_on_play_start", "playbook_on_task_start"):
            segments.append((f"{event}:{task}", collections.Counter()))
        segments[-1][1][(event, host, task)] += 1
    return segments


def test_same_events_as_ansible_runner(playbook_run: Run, reference_events: list[Event]) -> None:
    ours = playbook_run.events
    assert len(ours) == len(reference_events)
    assert _segments(ours) == _segments(reference_events)
    # with --forks 1 the order is the same too
    assert _shape(ours) == _shape(reference_events)
    for mine, theirs in zip(ours, reference_events, strict=True):
        assert set(mine) == set(theirs) - {"ad_hoc_command_id"}, mine["event"]
        assert set(mine["event_data"]) == set(theirs["event_data"]), mine["event"]
        assert (mine["start_line"], mine["end_line"]) == (
            theirs["start_line"],
            theirs["end_line"],
        )
    assert stats_from_events(ours) == stats_from_events(reference_events)


# ---- ad-hoc ------------------------------------------------------------------------------------


def test_ad_hoc_events_match_ansible_runner(tmp_path: Path) -> None:
    pdd = _private_data_dir(tmp_path / "adhoc", PLAYBOOK)
    run = _run_plugin(
        pdd, _adhoc_argv(pdd), tmp_path / "artifacts", env={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    )
    assert run.proc.returncode == 0, run.proc.stderr
    assert "host1 | SUCCESS => {" in run.proc.stdout  # the `minimal` callback's output
    expected = ["playbook_on_start", "playbook_on_stats"] + ["runner_on_start", "runner_on_ok"] * 2
    assert sorted(_names(run.events)) == sorted(expected)
    oks = [e for e in run.events if e["event"] == "runner_on_ok"]
    assert sorted(e["event_data"]["host"] for e in oks) == ["host1", "host2"]
    assert all(e["event_data"]["res"]["ping"] == "pong" for e in oks)
    assert all(e["event_data"]["task_action"] == "ping" for e in oks)
    assert run.events[0]["event_data"]["playbook"] == "__adhoc_playbook__"

    reference = _reference_run(
        _private_data_dir(tmp_path / "ref", PLAYBOOK), host_pattern="all", module="ping"
    )
    assert _segments(run.events) == _segments(reference)
    for mine, theirs in zip(run.events, reference, strict=True):
        assert set(mine["event_data"]) == set(theirs["event_data"]), mine["event"]


# ---- options ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steady_pdd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _private_data_dir(tmp_path_factory.mktemp("steady"), STEADY_PLAYBOOK)


def test_stdout_is_exactly_the_default_callbacks(steady_pdd: Path, tmp_path: Path) -> None:
    argv = _playbook_argv(steady_pdd)
    env = _clean_env()
    default = subprocess.run(
        argv, cwd=steady_pdd / "project", env=env, capture_output=True, text=True, check=True
    )
    with_events = _run_plugin(steady_pdd, argv, tmp_path / "a")
    without_events = _run_plugin(steady_pdd, argv, None)
    assert with_events.proc.stdout == default.stdout
    assert without_events.proc.stdout == default.stdout
    assert with_events.events
    assert not (steady_pdd / "project" / "job_events").exists()


@pytest.mark.parametrize(
    ("variable", "kept"),
    [
        ("CONTAINERRUNNER_OMIT_EVENT_DATA", set()),
        ("CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA", {"runner_on_failed"}),
    ],
)
def test_event_data_can_be_dropped(tmp_path: Path, variable: str, kept: set[str]) -> None:
    """As ansible-runner: the stats event too has no event_data; the recap comes aside."""
    pdd = _private_data_dir(tmp_path / "pdd", PLAYBOOK)
    run = _run_plugin(
        pdd, _playbook_argv(pdd), tmp_path / "artifacts", fifo=True, env={variable: "1"}
    )
    assert run.proc.returncode == 0, run.proc.stderr
    with_data = {e["event"] for e in run.events if e["event_data"]}
    assert with_data == kept
    assert all(e["stdout"] is not None and "counter" in e for e in run.events)
    recap = run.fifo_events[-1][STATS_KEY]
    assert stats_from_events([{"event": "playbook_on_stats", "event_data": recap}]) is not None
    assert recap["ok"] == {"host1": 8, "host2": 7}


def test_unwritable_artifact_dir_is_reported_once(steady_pdd: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "artifacts"
    blocked.mkdir()
    (blocked / "job_events").write_text("")  # a file where the directory should be
    run = _run_plugin(steady_pdd, _playbook_argv(steady_pdd), blocked)
    assert run.proc.returncode == 0
    assert run.proc.stderr.count("[containerrunner callback] cannot write job events") == 1
    assert "PLAY RECAP" in run.proc.stdout


def test_unreadable_fifo_does_not_stop_event_files(steady_pdd: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "nobody_reads"
    os.mkfifo(fifo)  # a FIFO without reader: the plugin's open gets ENXIO
    run = _run_plugin(
        steady_pdd,
        _playbook_argv(steady_pdd),
        tmp_path / "a",
        env={"CONTAINERRUNNER_EVENT_FIFO": str(fifo)},
    )
    assert run.proc.returncode == 0, run.proc.stderr
    assert _names(run.events)[-1] == "playbook_on_stats"
    assert "containerrunner callback" not in run.proc.stderr
