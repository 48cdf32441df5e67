"""Load (issue 11, item 5): many jobs at once in one private data dir, mixed local, podman and
docker. Every job's artifacts hold its own events only, numbered without a gap; the same ident
twice at once is refused, never merged. `--load-jobs N` (or CONTAINERRUNNER_LOAD_JOBS) sets how
many jobs run at once (default 50)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import ConfigurationError
from containerrunner.isolation.engine import Engine
from tests.conftest import EE_IMAGE
from tests.integration.support import copy_examples

pytestmark = [pytest.mark.integration, pytest.mark.podman, pytest.mark.docker]


def places(engines: dict[str, Engine]) -> list[dict[str, Any]]:
    return [
        {"process_isolation": False},
        *(
            {
                "process_isolation": True,
                "process_isolation_executable": name,
                "container_image": EE_IMAGE,
            }
            for name in engines
        ),
    ]


def job_events(artifact_dir: Path) -> list[dict[str, Any]]:
    """The event files of a job, by counter (named `<counter>-<uuid>.json`)."""
    files = (artifact_dir / "job_events").iterdir()
    events = [json.loads(p.read_text()) for p in files]
    return sorted(events, key=lambda e: int(e["counter"]))


def test_many_jobs_at_once_keep_their_own_events(
    both_engines: dict[str, Engine], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    count = int(request.config.getoption("--load-jobs"))
    pdd = copy_examples(tmp_path)
    where = places(both_engines)
    jobs = [
        {
            "private_data_dir": str(pdd),
            "playbook": "site.yml",
            "ident": f"load{i:03d}",
            "quiet": True,
            **where[i % len(where)],
        }
        for i in range(count)
    ]
    results = containerrunner.run_group(jobs)  # all at once
    assert [(r.status, r.rc) for r in results] == [("successful", 0)] * count, [
        (r.label, r.status, r.error) for r in results if r.status != "successful"
    ]
    seen_uuids: set[str] = set()
    for i, result in enumerate(results):
        ident = f"load{i:03d}"
        events = job_events(pdd / "artifacts" / ident)
        assert events, ident
        assert {e["runner_ident"] for e in events} == {ident}  # no crossover
        counters = [e["counter"] for e in events]
        assert counters == list(range(1, len(events) + 1)), ident  # no gap, no double
        uuids = {e["uuid"] for e in events}
        assert len(uuids) == len(events) and not uuids & seen_uuids
        seen_uuids |= uuids
        assert result.runner is not None
        assert [e["uuid"] for e in result.runner.events] == [e["uuid"] for e in events]
        assert result.stats is not None and set(result.stats["ok"]) == {"web1", "web2", "db1"}


def test_the_same_ident_twice_at_once_is_refused_not_merged(
    both_engines: dict[str, Engine], tmp_path: Path
) -> None:
    pdd = copy_examples(tmp_path)
    (pdd / "project" / "slow.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n  tasks:\n"
        "    - name: wait for the test\n      command: sleep 600\n"
    )
    started = threading.Event()

    def on_event(event: dict[str, Any]) -> bool:
        if event["event"] == "runner_on_start":
            started.set()
        return True

    for place in places(both_engines):
        started.clear()
        ident = f"twice-{place.get('process_isolation_executable', 'local')}"
        thread, first = containerrunner.run_async(
            private_data_dir=str(pdd), playbook="slow.yml", ident=ident, quiet=True,
            event_handler=on_event, **place,
        )  # fmt: skip
        try:
            assert started.wait(120), "the first job's task never started"
            with pytest.raises(ConfigurationError, match=f"ident '{ident}'.*still running"):
                containerrunner.run(
                    private_data_dir=str(pdd), playbook="site.yml", ident=ident, quiet=True,
                    **place,
                )  # fmt: skip
        finally:
            first.cancel()
            thread.join(120)
        assert first.status == "canceled"
        events = job_events(pdd / "artifacts" / ident)
        # only the first job's events: its play, never the demo's tasks
        assert {e["runner_ident"] for e in events} == {ident}
        assert "Say hello" not in {e.get("event_data", {}).get("task") for e in events}
        assert [e["counter"] for e in events] == list(range(1, len(events) + 1))
