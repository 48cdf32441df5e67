"""ansible-navigator (from PyPI) with containerrunner in ansible-runner's place.

The acceptance test of "a drop-in successor": the `ansible-navigator` command runs as a
subprocess with tests/integration/navigator_shim/ first on PYTHONPATH, so its
`from ansible_runner import ...` gets containerrunner (the real ansible-runner stays installed:
navigator's metadata requires it). Each subcommand runs in `--mode stdout`, on the host
(`--ee false`) and in the EE with podman and docker (`--ee true --ce ENGINE --eei IMAGE
--pull-policy never`).

ansible-navigator==26.10.0 is the `navigator` extra, which tox's integration env installs, so
CI runs these tests on the host, podman and docker (`pip install -e '.[test,navigator]'` for
a dev venv). CONTAINERRUNNER_NAVIGATOR may name the `ansible-navigator` script of another venv
(one with containerrunner's dependencies). navigator refuses `--ce podman` without a
/dev/mqueue directory on the host: scripts/setup-engine mounts one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

import containerrunner
from containerrunner.isolation.engine import Engine, detect_engine
from tests.conftest import EE_IMAGE, our_containers

pytestmark = pytest.mark.integration

SHIM = Path(__file__).resolve().parent / "navigator_shim"
# The containerrunner under test: the checkout these tests import it from.
SOURCE_ROOT = Path(containerrunner.__file__).resolve().parents[1]
RUN_TIMEOUT = 600

PLAYBOOK = """\
- name: First play
  hosts: web
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "hello from {{ inventory_hostname }} by {{ ansible_playbook_python }}"
    - name: Run a command
      ansible.builtin.command: echo done
      changed_when: false

- name: Second play
  hosts: db
  gather_facts: false
  tasks:
    - name: Set a fact
      ansible.builtin.set_fact:
        answer: 42
"""

FAILING_PLAYBOOK = """\
- name: Failing play
  hosts: db1
  gather_facts: false
  tasks:
    - name: Works
      ansible.builtin.debug:
        msg: fine
    - name: Breaks
      ansible.builtin.fail:
        msg: broken on purpose
"""

SLOW_PLAYBOOK = """\
- name: Slow play
  hosts: db1
  gather_facts: false
  tasks:
    - name: Say started
      ansible.builtin.file:
        path: "{{ playbook_dir }}/started"
        state: touch
    - name: Wait a long time
      ansible.builtin.command: sleep 300
"""

BROKEN_PLAYBOOK = """\
- name: Broken play
  hosts: all
  tasks:
    - ansible.builtin.debug: msg=x
   bad: [
"""

INVENTORY = """\
[web]
web1
web2

[db]
db1

[all:vars]
ansible_connection=local
ansible_python_interpreter="{{ ansible_playbook_python }}"
"""


# ---------------------------------------------------------------------- finding navigator
def find_navigator() -> Path | None:
    """CONTAINERRUNNER_NAVIGATOR, else the script beside this Python, else on PATH."""
    given = os.environ.get("CONTAINERRUNNER_NAVIGATOR")
    if given:
        return Path(given)
    beside = Path(sys.executable).with_name("ansible-navigator")
    if beside.is_file():
        return beside
    found = shutil.which("ansible-navigator")
    return Path(found) if found else None


def script_python(script: Path) -> str:
    """The interpreter of a console script (its shebang), else this Python."""
    with open(script, "rb") as fh:
        first = fh.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        candidate = first[2:].split()[0]
        if os.path.isfile(candidate):
            return candidate
    return sys.executable


@dataclass(frozen=True)
class Navigator:
    executable: Path
    python: str
    env: dict[str, str]


@dataclass(frozen=True)
class NavResult:
    argv: list[str]
    pid: int
    rc: int
    out: str
    err: str
    log: Path

    def describe(self) -> str:
        log_tail = ""
        if self.log.exists():
            lines = self.log.read_text(errors="replace").splitlines()
            log_tail = "\n".join(line for line in lines if "Running with" not in line)[-4000:]
        return (
            f"argv: {self.argv}\nrc: {self.rc}\n--- stdout (tail)\n{self.out[-3000:]}\n"
            f"--- stderr (tail)\n{self.err[-3000:]}\n--- navigator log (tail)\n{log_tail}"
        )


@pytest.fixture(scope="session")
def navigator(request: pytest.FixtureRequest) -> Navigator:
    executable = find_navigator()
    if executable is None or not executable.is_file():
        message = (
            "ansible-navigator is not installed: pip install -e '.[test,navigator]' (tox's "
            "integration env does), or set CONTAINERRUNNER_NAVIGATOR=/path/to/it"
        )
        if request.config.getoption("--require-engines"):  # CI: the acceptance test must run
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_NAVIGATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SHIM), str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    # --ee false runs ansible-playbook, ansible-doc... of navigator's venv.
    env["PATH"] = os.pathsep.join((str(executable.parent), env.get("PATH", os.defpath)))
    return Navigator(executable, script_python(executable), env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working directory with a playbook, an inventory and an ansible.cfg (forks = 7)."""
    work = tmp_path / "project"
    work.mkdir()
    (work / "site.yml").write_text(PLAYBOOK)
    (work / "fail.yml").write_text(FAILING_PLAYBOOK)
    (work / "slow.yml").write_text(SLOW_PLAYBOOK)
    (work / "broken.yml").write_text(BROKEN_PLAYBOOK)
    (work / "inventory.ini").write_text(INVENTORY)
    (work / "ansible.cfg").write_text("[defaults]\nforks = 7\n")
    return work


def ee_flags(where: dict[str, Any], request: pytest.FixtureRequest) -> list[str]:
    """navigator's execution-environment options for `where` (conftest's fixture)."""
    if not where["process_isolation"]:
        return ["--ee", "false"]
    engine = where["process_isolation_executable"]
    if engine == "podman" and not Path("/dev/mqueue").is_dir():
        # navigator's own pre-check (for ansible-runner's --ipc=host); it exits before any
        # ansible_runner call.
        message = (
            "ansible-navigator refuses podman without a /dev/mqueue directory: run "
            "scripts/setup-engine as root (it mounts one), or "
            "mkdir /dev/mqueue && mount -t mqueue mqueue /dev/mqueue"
        )
        if request.config.getoption("--require-engines"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return ["--ee", "true", "--ce", engine, "--eei", EE_IMAGE, "--pull-policy", "never"]


def nav_argv(
    navigator: Navigator, args: Sequence[str], flags: Sequence[str], log: Path, tail: Sequence[str]
) -> list[str]:
    return [
        str(navigator.executable), *args, "--mode", "stdout", *flags,
        "--display-color", "false", "--log-file", str(log), "--log-level", "debug", *tail,
    ]  # fmt: skip


def run_navigator(
    navigator: Navigator,
    args: Sequence[str],
    flags: Sequence[str],
    cwd: Path,
    tail: Sequence[str] = (),
) -> NavResult:
    """`ansible-navigator ARGS --mode stdout FLAGS ... TAIL` in `cwd` (TAIL: after `--`)."""
    log = cwd.parent / "navigator.log"
    argv = nav_argv(navigator, args, flags, log, tail)
    with subprocess.Popen(
        argv, cwd=cwd, env=navigator.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return NavResult(argv, proc.pid, proc.returncode, out, err, log)


def assert_no_containers_left(where: dict[str, Any], r: NavResult) -> None:
    """No container that navigator's process (via containerrunner) started is left."""
    if where["process_isolation"]:
        engine = detect_engine(where["process_isolation_executable"])
        left = our_containers(engine, r.pid)
        assert left == [], f"containers left behind in {engine.name}: {left}"


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the live processes whose argv contains `text` (zombies have none)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv.strip())
    return found


def assert_no_processes_left(project: Path) -> None:
    """Nothing of the job runs on: ansible-playbook and its forks are gone (ansible-runner
    2.4.3 leaves ansible-playbook's session, a fork worker and its `sleep`, behind)."""
    deadline = time.monotonic() + 10
    while (left := processes_mentioning(str(project))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"processes left behind: {left}"


def tasks_of(play: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((t["__task"], t["__host"], t["__result"]) for t in play["tasks"])


# ---------------------------------------------------------------------- the shim
def test_shim_replaces_ansible_runner(navigator: Navigator) -> None:
    code = (
        "import ansible_runner, containerrunner; "
        "print(getattr(ansible_runner, 'CONTAINERRUNNER_SHIM', False), "
        "ansible_runner.run_command is containerrunner.run_command, containerrunner.__file__)"
    )
    proc = subprocess.run(
        [navigator.python, "-c", code], env=navigator.env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shim, same, where_from = proc.stdout.split()
    assert (shim, same) == ("True", "True")
    assert Path(where_from).resolve().parents[1] == SOURCE_ROOT


# ---------------------------------------------------------------------- run
def test_run_writes_playbook_artifact(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    """`run --mode stdout --pae true`: the artifact lists the plays and each host's tasks."""
    artifact = project.parent / "artifact.json"
    rad = project.parent / "runner"
    rad.mkdir()
    r = run_navigator(
        navigator,
        ["run", "site.yml", "-i", "inventory.ini", "--pae", "true", "--pas", str(artifact)],
        [*ee_flags(where, request), "--rad", str(rad)],
        project,
    )
    assert r.rc == 0, r.describe()
    assert artifact.is_file(), r.describe()
    data = json.loads(artifact.read_text())
    assert data["status"] == "successful", r.describe()
    plays = data["plays"]
    assert [p["__play_name"] for p in plays] == ["First play", "Second play"], r.describe()
    assert tasks_of(plays[0]) == [
        ("Run a command", "web1", "Ok"),
        ("Run a command", "web2", "Ok"),
        ("Say hello", "web1", "Ok"),
        ("Say hello", "web2", "Ok"),
    ]
    assert tasks_of(plays[1]) == [("Set a fact", "db1", "Ok")]
    first = plays[0]["tasks"][0]
    assert first["play_uuid"] == plays[0]["uuid"] and first["task_action"]
    # With an artifact, navigator prints the events' stdout (not the process's).
    assert "PLAY RECAP" in "\n".join(data["stdout"])
    assert "PLAY [First play]" in r.out and r.out.count("PLAY RECAP") == 1, r.describe()
    # navigator's event_handler returns False (no --rwje): no event file is kept.
    [job] = [p for p in (rad / "artifacts").iterdir() if p.is_dir()]
    assert list((job / "job_events").glob("*.json")) == []
    hello = next(t for t in plays[0]["tasks"] if t["__task"] == "Say hello")
    in_ee = "by /opt/ansible/bin/python" in hello["res"]["msg"]  # the EE's Python
    assert in_ee == where["process_isolation"], hello["res"]
    assert_no_containers_left(where, r)


def test_run_failing_playbook(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    artifact = project.parent / "artifact.json"
    r = run_navigator(
        navigator,
        ["run", "fail.yml", "-i", "inventory.ini", "--pae", "true", "--pas", str(artifact)],
        ee_flags(where, request),
        project,
    )
    assert r.rc == 2, r.describe()
    data = json.loads(artifact.read_text())
    assert data["status"] == "failed", r.describe()
    [play] = data["plays"]
    assert tasks_of(play) == [("Breaks", "db1", "Failed"), ("Works", "db1", "Ok")]


def assert_error_shown(r: NavResult, artifact: Path, rc: int, text: str) -> None:
    """A job that failed before any play: its rc, and the error on navigator's stdout and in
    the artifact's stdout (made from the events, so the error lines must be events)."""
    assert r.rc == rc, r.describe()
    assert text in r.out, r.describe()
    data = json.loads(artifact.read_text())
    assert data["status"] == "failed"
    assert text in "\n".join(data["stdout"]), data["stdout"]


def test_run_broken_playbook_shows_the_error(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    """ansible-playbook's error comes before any callback event: it must still reach the
    event_handler (ansible-runner makes such output `verbose` events), as navigator prints
    only the events' stdout when it writes an artifact."""
    artifact = project.parent / "artifact.json"
    r = run_navigator(
        navigator,
        ["run", "broken.yml", "-i", "inventory.ini", "--pae", "true", "--pas", str(artifact)],
        ee_flags(where, request),
        project,
    )
    assert_error_shown(r, artifact, 4, "YAML parsing failed")


def test_run_engine_error_is_shown(
    navigator: Navigator, engine: Engine, project: Path, request: pytest.FixtureRequest
) -> None:
    """The engine's own error (here a bad container option) is shown and its rc returned."""
    where = {"process_isolation": True, "process_isolation_executable": engine.name}
    artifact = project.parent / "artifact.json"
    r = run_navigator(
        navigator,
        ["run", "site.yml", "-i", "inventory.ini", "--pae", "true", "--pas", str(artifact)],
        [*ee_flags(where, request), "--co=--no-such-flag"],
        project,
    )
    assert_error_shown(r, artifact, 125, "no-such-flag")


def test_run_stdout_without_artifact_keeps_job_events(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    """`--pae false`: the process's output goes straight to navigator's stdout (output_fd);
    `--rad DIR --rwje`: the job's events stay in DIR/artifacts/<ident>/job_events."""
    rad = project.parent / "runner"
    rad.mkdir()
    r = run_navigator(
        navigator,
        ["run", "site.yml", "-i", "inventory.ini", "--pae", "false"],
        [*ee_flags(where, request), "--rad", str(rad), "--rwje"],
        project,
    )
    assert r.rc == 0, r.describe()
    assert "PLAY [First play]" in r.out and r.out.count("PLAY RECAP") == 1, r.describe()
    idents = [p for p in (rad / "artifacts").iterdir() if p.is_dir()]
    assert len(idents) == 1, idents
    events = [json.loads(p.read_text()) for p in (idents[0] / "job_events").glob("*.json")]
    names = {e["event_data"].get("name") for e in events if e["event"] == "playbook_on_play_start"}
    assert names == {"First play", "Second play"}, r.describe()
    assert any(e["event"] == "playbook_on_stats" for e in events)


def test_run_timeout(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    """`--rt 10` (ansible-runner's `timeout`): the job stops, its status is `timeout`."""
    artifact = project.parent / "artifact.json"
    start = time.monotonic()
    r = run_navigator(
        navigator,
        ["run", "slow.yml", "-i", "inventory.ini", "--pae", "true", "--pas", str(artifact)],
        [*ee_flags(where, request), "--rt", "10"],
        project,
    )
    took = time.monotonic() - start
    assert r.rc == 254, r.describe()  # ansible-runner's rc for timeout
    assert took < 120, f"took {took:.0f} s\n{r.describe()}"
    data = json.loads(artifact.read_text())
    assert data["status"] == "timeout", r.describe()
    assert_no_containers_left(where, r)
    assert_no_processes_left(project)


def test_run_ctrl_c_cancels(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    """SIGINT to navigator: it sets `cancelled`, containerrunner's cancel_callback stops the
    job (and its container), finished_callback fires, navigator exits non-zero."""
    flags = ee_flags(where, request)
    log = project.parent / "navigator.log"
    argv = nav_argv(
        navigator,
        ["run", "slow.yml", "-i", "inventory.ini", "--pae", "true",
         "--pas", str(project.parent / "artifact.json")],
        flags, log, (),
    )  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=project, env=navigator.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not (project / "started").exists():
            assert proc.poll() is None, f"navigator ended early: rc {proc.returncode}"
            assert time.monotonic() < deadline, "the playbook did not start in 180 s"
            time.sleep(0.2)
        time.sleep(1)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = NavResult(argv, proc.pid, proc.returncode, out, err, log)
    assert proc.returncode == 254, result.describe()  # ansible-runner's rc for canceled
    assert took < 60, f"cancel took {took:.0f} s\n{result.describe()}"
    assert_no_containers_left(where, result)
    assert_no_processes_left(project)


# ------------------------------------------------------------ doc, exec, inventory, config
def test_doc(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    r = run_navigator(
        navigator, ["doc", "ansible.builtin.debug"], ee_flags(where, request), project
    )
    assert r.rc == 0, r.describe()
    assert "MODULE ansible.builtin.debug" in r.out, r.describe()
    in_ee = "/opt/ansible/lib/" in r.out  # the EE's ansible-core, not the host's
    assert in_ee == where["process_isolation"], r.describe()


def test_exec(
    navigator: Navigator, engine: Engine, project: Path, request: pytest.FixtureRequest
) -> None:
    """`exec -- ansible --version` runs in the EE, in the project dir (its ansible.cfg)."""
    where = {"process_isolation": True, "process_isolation_executable": engine.name}
    r = run_navigator(
        navigator, ["exec"], ee_flags(where, request), project, tail=["--", "ansible", "--version"]
    )
    assert r.rc == 0, r.describe()
    assert r.out.startswith("ansible [core 2."), r.describe()
    assert "executable location = /opt/ansible/bin/ansible" in r.out, r.describe()
    assert f"config file = {project}/ansible.cfg" in r.out, r.describe()


def test_exec_interactive_shell_on_a_terminal(
    navigator: Navigator, engine: Engine, project: Path, request: pytest.FixtureRequest
) -> None:
    """`exec -- /bin/bash` from a terminal (navigator passes sys.stdin as input_fd): the
    shell in the EE gets a terminal of the caller's size, and its exit code comes back."""
    where = {"process_isolation": True, "process_isolation_executable": engine.name}
    log = project.parent / "navigator.log"
    argv = nav_argv(navigator, ["exec"], ee_flags(where, request), log, ["--", "/bin/bash"])
    child = pexpect.spawn(
        argv[0], argv[1:], cwd=str(project), env=navigator.env, encoding="utf-8",
        timeout=120, dimensions=(33, 111),
    )  # fmt: skip
    try:
        child.expect(r"[#$] ")
        child.sendline("tty; echo size=$(stty size); echo answer=$((6*7)); exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    seen = child.before or ""
    assert child.exitstatus == 5, seen
    assert "answer=42" in seen and "/dev/pts/" in seen, seen
    assert "size=33 111" in seen, seen


def test_exec_rc_passes_through(
    navigator: Navigator, engine: Engine, project: Path, request: pytest.FixtureRequest
) -> None:
    """navigator's default `--exec-shell true` runs `/bin/bash -c 'ARGS'` in the EE."""
    where = {"process_isolation": True, "process_isolation_executable": engine.name}
    r = run_navigator(
        navigator, ["exec"], ee_flags(where, request), project,
        tail=["--", "echo to-out; echo to-err >&2; exit 3"],
    )  # fmt: skip
    assert r.rc == 3, r.describe()
    assert r.out.strip() == "to-out", r.describe()
    assert "to-err" in r.err, r.describe()


def test_inventory_list(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    r = run_navigator(
        navigator, ["inventory", "-i", "inventory.ini", "--list"], ee_flags(where, request), project
    )
    assert r.rc == 0, r.describe()
    inventory = json.loads(r.out)
    assert inventory["web"]["hosts"] == ["web1", "web2"]
    assert inventory["db"]["hosts"] == ["db1"]


def test_config_dump(
    navigator: Navigator, where: dict[str, Any], project: Path, request: pytest.FixtureRequest
) -> None:
    r = run_navigator(navigator, ["config", "dump"], ee_flags(where, request), project)
    assert r.rc == 0, r.describe()
    assert f"DEFAULT_FORKS({project}/ansible.cfg) = 7" in r.out, r.describe()
