"""Nothing is left in the temp dir: every helper, sync and async, success, failure, cancel,
timeout, a failing start and a handler that raises; and what a SIGKILLed owner left behind
is removed by the next job's reaper, its container too."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.tempdirs import ours_in_tempdir, read_owner
from tests.conftest import left_in_tempdir as all_left_in_tempdir
from tests.conftest import our_containers
from tests.integration.support import (
    LOCAL_VARS,
    Watcher,
    files_containing,
    kill_owner_once_started,
)

pytestmark = pytest.mark.integration


def left_in_tempdir(before: set[str]) -> list[str]:
    """What containerrunner jobs (they always write an owner record) left since `before`."""
    return [p for p in all_left_in_tempdir(before) if read_owner(p) is not None]


ROLE_SPEC = """\
argument_specs:
  main:
    short_description: a role for the tests
    options:
      greeting: {type: str, default: hi}
"""


def make_content(tmp_path: Path) -> tuple[Path, Path]:
    """An inventory file and a playbook dir with one role that has an argument spec."""
    inventory = tmp_path / "hosts"
    inventory.write_text(f"localhost {LOCAL_VARS}\n")
    meta = tmp_path / "roles" / "greeter" / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(ROLE_SPEC)
    (tmp_path / "roles" / "greeter" / "tasks").mkdir()
    (tmp_path / "roles" / "greeter" / "tasks" / "main.yml").write_text("- debug: msg=hi\n")
    return inventory, tmp_path


def every_helper(inventory: Path, playbook_dir: Path) -> list[tuple[str, Callable[..., Any]]]:
    """(name, call) for every helper; a call takes the execution keyword arguments."""
    pd = str(playbook_dir)
    play = [{"hosts": "all", "gather_facts": False, "tasks": [{"debug": {"msg": "hi"}}]}]
    inv = f"localhost {LOCAL_VARS}"
    return [
        ("run_command", lambda **kw: containerrunner.run_command_async("echo", ["hi"], **kw)),
        ("get_plugin_docs", lambda **kw: containerrunner.get_plugin_docs_async(["ping"], **kw)),
        ("get_plugin_list", lambda **kw: containerrunner.get_plugin_list_async(**kw)),
        (
            "get_inventory",
            lambda **kw: containerrunner.get_inventory_async("list", [str(inventory)], **kw),
        ),
        ("get_ansible_config", lambda **kw: containerrunner.get_ansible_config_async("dump", **kw)),
        ("get_role_list", lambda **kw: containerrunner.get_role_list_async(playbook_dir=pd, **kw)),
        (
            "get_role_argspec",
            lambda **kw: containerrunner.get_role_argspec_async("greeter", playbook_dir=pd, **kw),
        ),
        ("run", lambda **kw: containerrunner.run_async(playbook=play, inventory=inv, **kw)),
    ]


def test_no_helper_leaves_anything_in_the_temp_dir(where: dict[str, Any], tmp_path: Path) -> None:
    before = set(ours_in_tempdir())
    inventory, playbook_dir = make_content(tmp_path)
    cwd = {"host_cwd": str(tmp_path)}

    # sync: each returns its results, the temporary private data dir already gone
    out, _err, rc = containerrunner.run_command("echo", ["hello"], **cwd, **where)
    assert (rc, out.strip()) == (0, "hello")
    docs, _err = containerrunner.get_plugin_docs(["ping"], response_format="json", **cwd, **where)
    assert "ping" in docs
    # async: the Runner keeps what the caller reads once the job has ended
    for name, call in every_helper(inventory, playbook_dir):
        thread, runner = call(**cwd, **where)
        thread.join(300)
        assert not thread.is_alive(), name
        assert runner.status == "successful", (name, runner.stderr.read())
        assert runner.stdout.read(), f"{name}: no output kept"
        assert left_in_tempdir(before) == [], f"{name} left its dirs"
    events = [e["event"] for e in runner.events]  # the last one is run(): events kept too
    assert events[0] == "playbook_on_start" and events[-1] == "playbook_on_stats"

    # cancel, timeout, a start that fails, a handler that raises
    ready = Watcher("ready")
    thread, runner = containerrunner.run_command_async(
        "sh", ["-c", "echo ready; sleep 600"], output_fd=ready, **cwd, **where
    )
    assert ready.seen.wait(120)
    runner.cancel()
    thread.join(120)
    assert (runner.status, runner.rc) == ("canceled", 254)
    _out, _err, rc = containerrunner.run_command("sleep", ["600"], timeout=2, **cwd, **where)
    assert rc == 254
    missing = "no-such-program-4711"
    failing_start: Any = containerrunner.ImageNotFoundError
    start_kwargs = {**where, "container_image": "localhost/no-such-image:1", "pull": "never"}
    if not where["process_isolation"]:
        failing_start, start_kwargs = containerrunner.ConfigurationError, where
    with pytest.raises(failing_start):
        containerrunner.run_command(missing, [], **cwd, **start_kwargs)

    def boom(event: dict[str, Any]) -> bool:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        containerrunner.run(
            playbook=[{"hosts": "all", "gather_facts": False, "tasks": [{"ping": None}]}],
            inventory=f"localhost {LOCAL_VARS}", event_handler=boom, **cwd, **where,
        )  # fmt: skip
    assert left_in_tempdir(before) == []


def test_a_private_data_dir_keeps_only_the_artifacts(where: dict[str, Any], tmp_path: Path) -> None:
    before = set(ours_in_tempdir())
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    thread, runner = containerrunner.run_command_async(
        "echo", ["kept"], private_data_dir=str(pdd), ident="keep", host_cwd=str(tmp_path), **where
    )
    thread.join(300)
    assert runner.stdout.read().strip() == "kept"
    assert sorted(p.name for p in pdd.iterdir()) == ["artifacts"]
    kept = sorted(p.name for p in (pdd / "artifacts" / "keep").iterdir())
    assert ".containerrunner-owner" not in kept
    assert {"command", "rc", "status", "stdout", "stderr"} <= set(kept)
    assert left_in_tempdir(before) == []


KILLED_OWNER = textwrap.dedent(
    """
    import json, sys
    import containerrunner
    containerrunner.run_command(
        "sh", ["-c", "echo up $$; exec sleep 600"], output_fd=sys.stdout, **json.loads(sys.argv[1])
    )
    """
)


def test_what_a_killed_owner_left_is_reaped_by_the_next_job(
    where: dict[str, Any], tmp_path: Path, engine_probes: dict[str, Any]
) -> None:
    name = where.get("process_isolation_executable")
    engine = engine_probes[name].engine if name else None
    before = set(ours_in_tempdir())
    owner_pid, line = kill_owner_once_started(KILLED_OWNER, {**where, "host_cwd": str(tmp_path)})
    try:
        left = left_in_tempdir(before)
        assert len(left) == 2, left  # its temporary private data dir and its runtime dir
        assert all((o := read_owner(p)) is not None and o.pid == owner_pid for p in left)
        if engine is not None:
            assert our_containers(engine, owner_pid), "the killed owner's container is gone?"

        containerrunner.run_command("true", [], host_cwd=str(tmp_path))  # any job reaps

        assert left_in_tempdir(before) == []
        if engine is not None:
            assert our_containers(engine, owner_pid) == []
    finally:
        if engine is None:  # the local `sleep` outlived its owner: it leads its own group
            pid = int(line.split()[1])
            with_group_gone(pid)


def with_group_gone(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def test_scans_pass_over_fifos_others_left(tmp_path: Path) -> None:
    """A FIFO in a containerrunner-* dir of the temp dir blocks no scan of the test suite."""
    planted = Path(tempfile.gettempdir()) / f"containerrunner-planted-{os.getpid()}"
    planted.mkdir()
    try:
        os.mkfifo(planted / "events.fifo")
        os.mkfifo(planted / ".containerrunner-owner")
        done = threading.Event()

        def scan() -> None:
            assert files_containing("secret", planted, *map(Path, ours_in_tempdir())) == []
            assert str(planted) in all_left_in_tempdir(set())  # an owner record never opened
            containerrunner.run_command("true", [], host_cwd=str(tmp_path))  # runs the reaper
            done.set()

        thread = threading.Thread(target=scan, daemon=True)
        thread.start()
        thread.join(120)
        assert done.is_set(), "a scan blocked on a FIFO"
        assert planted.is_dir(), "the reaper removed a dir it does not own"
    finally:
        for name in ("events.fifo", ".containerrunner-owner"):
            (planted / name).unlink()
        planted.rmdir()
