"""JUnit XML from per-task results, for CI servers (Jenkins, GitLab): `artifacts/<ident>/junit.xml`.

One `<testsuite>` per play, one `<testcase>` per task x host that ran: `failed` and
`unreachable` results are `<failure>`s (message and type; the result as text), `skipped` ones
`<skipped>`; `ignored` and `rescued` failures pass, with a note in `<system-out>`. A host only
carried forward as unreachable (it never ran the task) has no testcase, so the counts match the
play recap: failures = failures + dark, skipped = skipped. Times come from the events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from containerrunner.artifacts import write_text_atomic
from containerrunner.results import Summary, TaskResult

JUNIT_FILE = "junit.xml"


def _message(res: Any, default: str) -> str:
    if isinstance(res, Mapping):
        for key in ("msg", "reason", "stderr", "skip_reason"):
            value = res.get(key)
            if value:
                return str(value).splitlines()[0][:500]
    return default


def _carried(res: Any) -> bool:
    return isinstance(res, Mapping) and bool(res.get("carried_forward"))


def _testcase(suite: ET.Element, task: TaskResult, host: str) -> tuple[str, float] | None:
    bucket = task.bucket_of(host)
    assert bucket is not None
    res = getattr(task, bucket)[host]
    if bucket == "unreachable" and _carried(res):
        return None
    seconds = task.duration.get(host, 0.0)
    case = ET.SubElement(
        suite, "testcase", name=f"[{host}] {task.name}", classname=f"{task.play}.{task.name}",
        time=f"{seconds:.3f}",
    )  # fmt: skip
    if bucket in ("failed", "unreachable"):
        failure = ET.SubElement(case, "failure", message=_message(res, bucket), type=bucket)
        failure.text = json.dumps(res, indent=2, default=str)
    elif bucket == "skipped":
        ET.SubElement(case, "skipped", message=_message(res, "skipped"))
    elif bucket in ("ignored", "rescued"):
        ET.SubElement(case, "system-out").text = f"{bucket}: {_message(res, 'failed')}"
    return bucket, seconds


def junit_xml(summary: Summary, name: str) -> str:
    """The JUnit XML document of `summary`; `name` names the whole run (e.g. the ident)."""
    root = ET.Element("testsuites", name=name)
    suites: dict[str, ET.Element] = {}
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    per_suite: dict[str, dict[str, float]] = {}
    for task in summary.tasks:
        if task.play_uuid not in suites:
            suites[task.play_uuid] = ET.SubElement(
                root, "testsuite", name=task.play or "play", errors="0"
            )
            per_suite[task.play_uuid] = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
        counts = per_suite[task.play_uuid]
        for host in task.hosts():
            outcome = _testcase(suites[task.play_uuid], task, host)
            if outcome is None:
                continue
            bucket, seconds = outcome
            for tally in (counts, totals):
                tally["tests"] += 1
                tally["time"] += seconds
                tally["failures"] += bucket in ("failed", "unreachable")
                tally["skipped"] += bucket == "skipped"
    for uuid, suite in suites.items():
        _count(suite, per_suite[uuid])
    _count(root, totals)
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _count(element: ET.Element, counts: Mapping[str, float]) -> None:
    for key in ("tests", "failures", "skipped"):
        element.set(key, str(int(counts[key])))
    element.set("time", f"{counts['time']:.3f}")


def write_junit(artifact_dir: str | os.PathLike[str], summary: Summary, name: str) -> Path:
    path = Path(artifact_dir) / JUNIT_FILE
    write_text_atomic(path, junit_xml(summary, name))
    return path
