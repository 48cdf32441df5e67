"""Warm EE sessions (issue 10, item 3), in real podman and docker with the project's EE: a call
in a session gives what a cold call gives; a stopped call leaves the session usable; the
container goes on exit, on error and when its owner is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import ConfigurationError
from containerrunner.isolation.engine import Engine
from tests.conftest import EE_IMAGE, our_containers
from tests.integration.support import REPO, container_kwargs, copy_examples

pytestmark = pytest.mark.integration

# tells the test through a FIFO that its `sleep 600` is about to run (no sleep-as-sync)
SLOW = (
    "- hosts: db1\n  gather_facts: false\n  tasks:\n"
    "    - shell: echo up > {{ fifo }} && exec sleep 600\n"
)
LIMIT = 120  # seconds; only so that a bug fails the test instead of hanging it


def session_for(engine: Engine, *mounts: Path) -> containerrunner.Session:
    return containerrunner.Session(
        image=EE_IMAGE, engine=engine.name, mounts=[str(m) for m in mounts]
    )


def layout(artifact_dir: Path) -> list[str]:
    """The artifact dir's files, relative; job_events/ files by counter only."""
    names = []
    for path in artifact_dir.rglob("*"):
        rel = path.relative_to(artifact_dir).as_posix()
        if rel.startswith("job_events/"):
            rel = "job_events/" + rel.split("/")[1].split("-")[0]
        names.append(rel)
    return sorted(names)


def shape(events: list[dict[str, Any]]) -> tuple[list[int], list[str], dict[str, list[str]]]:
    """Counters, event types (sorted) and each host's event sequence."""
    per_host: dict[str, list[str]] = {}
    for event in events:
        host = event.get("event_data", {}).get("host")
        if host:
            per_host.setdefault(host, []).append(event["event"])
    return [e["counter"] for e in events], sorted(e["event"] for e in events), per_host


def running_in(engine: Engine, container: str, needle: str) -> bool:
    """Whether a process whose command line contains `needle` runs in `container`."""
    script = 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done'
    out = subprocess.run(
        [engine.executable, "exec", container, "sh", "-c", script],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return any(needle in line and "for f in" not in line for line in out.splitlines())


def test_a_call_in_a_session_gives_what_a_cold_call_gives(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    cold_dir, warm_dir = copy_examples(tmp_path / "cold"), copy_examples(tmp_path / "warm")
    kwargs: dict[str, Any] = {"playbook": "site.yml", "quiet": True, "ident": "same"}
    cold = containerrunner.run(private_data_dir=str(cold_dir), **kwargs, **container_kwargs(engine))
    cold_docs = containerrunner.get_plugin_docs(
        ["ansible.builtin.ping"], response_format="json", host_cwd=str(tmp_path),
        **container_kwargs(engine),
    )  # fmt: skip
    with session_for(engine, tmp_path) as session:
        warm = containerrunner.run(private_data_dir=str(warm_dir), session=session, **kwargs)
        warm_docs = containerrunner.get_plugin_docs(
            ["ansible.builtin.ping"], response_format="json", host_cwd=str(tmp_path),
            session=session,
        )  # fmt: skip
        assert session.container in our_containers(engine, os.getpid())
    assert (warm.status, warm.rc) == (cold.status, cold.rc) == ("successful", 0)
    # hosts run in parallel forks: the order across hosts varies, each host's does not
    assert shape(list(warm.events)) == shape(list(cold.events))
    assert warm.stats == cold.stats
    assert layout(Path(warm.artifact_dir)) == layout(Path(cold.artifact_dir))
    assert warm_docs == cold_docs
    assert "ansible.builtin.ping" in warm_docs[0]


def test_a_canceled_call_stops_its_process_not_the_session(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "slow.yml").write_text(SLOW)
    fifo = tmp_path / "up"
    os.mkfifo(fifo)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.append(fifo.read_text()), daemon=True)
    reader.start()
    with session_for(engine, tmp_path) as session:
        thread, runner = containerrunner.run_async(
            private_data_dir=str(pdd), playbook="slow.yml", quiet=True, session=session,
            extravars={"fifo": str(fifo)},
        )  # fmt: skip
        reader.join(LIMIT)
        assert said == ["up\n"], "the slow task never started"
        assert running_in(engine, session.container, "sleep 600")
        runner.cancel()
        thread.join(LIMIT)
        assert not thread.is_alive()
        assert (runner.status, runner.rc) == ("canceled", 254)
        assert not running_in(engine, session.container, "sleep 600")
        assert not running_in(engine, session.container, "ansible-playbook")
        # a timeout too stops only its own process; the session still serves calls
        out, _err, rc = containerrunner.run_command(
            "sleep", ["600"], session=session, host_cwd=str(tmp_path), timeout=2, quiet=True
        )
        assert rc == 254
        assert not running_in(engine, session.container, "sleep 600")
        out, _err, rc = containerrunner.run_command(
            "ansible", ["--version"], session=session, host_cwd=str(tmp_path), quiet=True
        )
        assert rc == 0 and "core" in out


def test_a_session_refuses_what_it_cannot_give_and_goes_on_error(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    session = session_for(engine, inside)
    with pytest.raises(RuntimeError, match="the caller's own error"), session:
        with pytest.raises(ConfigurationError, match=str(outside)):
            containerrunner.run_command("true", [], session=session, host_cwd=str(outside))
        with pytest.raises(ConfigurationError, match="container_options"):
            containerrunner.run_command(
                "true", [], session=session, host_cwd=str(inside),
                container_options=["--cap-add=NET_ADMIN"],
            )  # fmt: skip
        assert session.container in our_containers(engine, os.getpid())
        raise RuntimeError("the caller's own error")
    assert not session.running
    # no_leftover_containers: the container is gone too


OWNER = textwrap.dedent(
    """
    import sys, containerrunner
    session = containerrunner.Session(image=sys.argv[1], engine=sys.argv[2], mounts=[])
    session.start()
    print(session.container, flush=True)
    sys.stdin.read()
    """
)


def test_a_killed_owners_session_is_removed_by_the_next_call(
    engine: Engine, tmp_path: Path
) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, EE_IMAGE, engine.name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert owner.stdout is not None
    name = owner.stdout.readline().strip()
    assert our_containers(engine, owner.pid) == [name]
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert our_containers(engine, owner.pid) == [name], "gone before any call?"
    containerrunner.run_command("true", [], host_cwd=str(tmp_path))  # any job reaps
    assert our_containers(engine, owner.pid) == []
