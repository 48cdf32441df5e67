"""Issue 11, item 6: a command writing 1 GiB to stdout does not grow the caller's memory past a
fixed bound; the output streams to the artifact file.

The job runs in a child Python (so its peak RSS is its own, not the test session's) that builds
the Runner for run_command()'s arguments, runs it without reading stdout back (run_command()
returns the whole output as a string, by ansible-runner's API), and reports its peak RSS before
and after. Two shapes: one line of 1 GiB (no newline: the worst case for the verbose event of a
line) and 1 GiB in lines of 1 MiB (1024 verbose events, each written to job_events/).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.integration.support import container_kwargs

pytestmark = pytest.mark.integration

GIB = 1 << 30
BOUND = 200 * 1024 * 1024  # bytes of peak RSS growth allowed

JOB = r"""
import json, os, resource, sys
from containerrunner.interface import command_runner

pdd, python, where = sys.argv[1], sys.argv[4], json.loads(sys.argv[5])
line, size = int(sys.argv[2]), int(sys.argv[3])
writer = (
    "import sys\n"
    f"chunk = b'x' * ({line} - 1) + b'\\n' if {line} else b'x' * 65536\n"
    f"for _ in range({size} // len(chunk)):\n"
    "    sys.stdout.buffer.write(chunk)\n"
)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
options = {"private_data_dir": pdd, "quiet": True, **where}
runner = command_runner(python, ["-c", writer], options, "run_command")
status, rc = runner.run()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
art = runner.config.artifact_dir
events = list(runner.events)
print(json.dumps({
    "status": status, "rc": rc, "growth": (after - before) * 1024,
    "stdout_size": os.path.getsize(os.path.join(art, "stdout")),
    "events": len(events),
    "first_len": len(events[0]["stdout"]) if events else 0,
    "first_tail": events[0]["stdout"][-80:] if events else "",
}))
"""


def run_big_job(
    tmp_path: Path, line: int, size: int, python: str, where: dict[str, Any]
) -> dict[str, Any]:
    """Run the writer of `size` bytes in lines of `line` (0: one line) through the harness
    above; its report. The private data dir (the size again, on disk) is removed."""
    pdd = tmp_path / "pdd"
    pdd.mkdir()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", JOB, str(pdd), str(line), str(size), python, json.dumps(where)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        report: dict[str, Any] = json.loads(proc.stdout)
    finally:
        shutil.rmtree(pdd)  # 1-2 GiB: not left for pytest's kept tmp dirs
    return report


def assert_bounded(report: dict[str, Any], size: int, line: int) -> None:
    assert (report["status"], report["rc"]) == ("successful", 0)
    assert report["stdout_size"] == size
    assert report["growth"] < BOUND, f"peak RSS grew by {report['growth'] // 2**20} MiB"
    if line:
        assert report["events"] == size // line
        assert report["first_len"] == line - 1
    else:  # one verbose event, cut at MAX_VERBOSE_LINE with a visible marker
        assert report["events"] == 1
        assert "line truncated" in report["first_tail"]
        assert str(size - (1 << 20)) in report["first_tail"]


@pytest.mark.parametrize("line", [0, 1 << 20], ids=["one-line", "1MiB-lines"])
def test_one_gib_of_stdout_streams_to_the_file_in_bounded_memory(tmp_path: Path, line: int) -> None:
    report = run_big_job(tmp_path, line, GIB, sys.executable, {"process_isolation": False})
    assert_bounded(report, GIB, line)


def test_big_stdout_in_an_engine_streams_to_the_file_in_bounded_memory(
    tmp_path: Path, engine: Engine, request: pytest.FixtureRequest
) -> None:
    """The same in podman and docker: one line of `--big-stdout-mib` MiB (CI: 256; the issue's
    1 GiB with 1024) written by python3 in the EE container, through the engine client."""
    size = int(request.config.getoption("--big-stdout-mib")) << 20
    report = run_big_job(tmp_path, 0, size, "python3", container_kwargs(engine))
    assert_bounded(report, size, 0)


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: big
      ansible.builtin.debug:
        msg: "{{ 'y' * 5000 }}"
    - name: small
      ansible.builtin.debug:
        msg: "short"
"""


def test_oversized_res_is_truncated_with_a_marker_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "site.yml").write_text(PLAYBOOK)
    r = containerrunner.run(
        private_data_dir=str(tmp_path),
        playbook="site.yml",
        envvars={"CONTAINERRUNNER_MAX_EVENT_RES": "2000"},
        process_isolation=False,
    )
    assert (r.status, r.rc) == ("successful", 0), r.stdout.read()
    oks = {e["event_data"]["task"]: e for e in r.events if e["event"] == "runner_on_ok"}
    big = oks["big"]["event_data"]["res"]
    assert big["_containerrunner_truncated"] is True and big["limit"] == 2000
    assert big["size"] > 5000 and big["msg"] == "y" * 1024
    assert oks["small"]["event_data"]["res"]["msg"] == "short"
    assert "y" * 5000 in r.stdout.read()  # the human output is whole
