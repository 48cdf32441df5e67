"""`containerrunner run` as a group: which command lines run a group, the jobs they make
(engines x images, idents, kwargs), the usage errors, and the table (no processes)."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from containerrunner.cli.args import UsageError, parse_args
from containerrunner.cli.grouprun import (
    format_table,
    group_exit_code,
    group_jobs,
    image_name,
    is_group,
    junit_path,
    table_rows,
)
from containerrunner.cli.jobcmds import cmd_start, run_kwargs
from containerrunner.group import GroupResult


def args_for(tmp_path: Path, *extra: str, command: str = "run") -> Any:
    return parse_args([command, str(tmp_path), "-p", "site.yml", *extra])


@pytest.mark.parametrize(
    ("extra", "group"),
    [
        ((), False),
        (("--engine", "podman"), False),
        (("--engine", "podman", "--container-image", "a"), False),
        (("--engine", "podman", "--engine", "docker"), True),
        (("--engine", "podman", "--image", "a", "--image", "b"), True),
        (("--engine", "podman", "--max-parallel", "1"), True),
    ],
)
def test_which_command_lines_run_a_group(
    tmp_path: Path, extra: tuple[str, ...], group: bool
) -> None:
    assert is_group(args_for(tmp_path, *extra)) is group


def test_single_values_keep_todays_kwargs(tmp_path: Path) -> None:
    kw = run_kwargs(args_for(tmp_path, "--engine", "docker", "--image", "img:1", "-i", "x"))
    assert kw["process_isolation"] is True
    assert kw["process_isolation_executable"] == "docker"
    assert kw["container_image"] == "img:1"
    assert kw["ident"] == "x"


def test_engines_times_images_in_the_order_given(tmp_path: Path) -> None:
    args = args_for(
        tmp_path, "--engine", "podman", "--engine", "docker", "-i", "nightly",
        "--image", "localhost/ee:latest", "--container-image", "localhost/ee:2.14",
    )  # fmt: skip
    jobs = group_jobs(args)
    kw = [j.kwargs for j in jobs]
    assert [(k["process_isolation_executable"], k["container_image"]) for k in kw] == [
        ("podman", "localhost/ee:latest"),
        ("podman", "localhost/ee:2.14"),
        ("docker", "localhost/ee:latest"),
        ("docker", "localhost/ee:2.14"),
    ]  # fmt: skip
    assert [j.name for j in jobs] == [
        "podman-ee_latest", "podman-ee_2.14", "docker-ee_latest", "docker-ee_2.14",
    ]  # fmt: skip
    assert [j.kwargs["ident"] for j in jobs] == [f"nightly-{j.name}" for j in jobs]
    for job in jobs:
        assert job.kwargs["process_isolation"] is True
        assert job.kwargs["playbook"] == "site.yml"
        assert job.kwargs["private_data_dir"] == str(tmp_path)


def test_without_an_ident_each_job_gets_a_uuid(tmp_path: Path) -> None:
    jobs = group_jobs(args_for(tmp_path, "--engine", "podman", "--engine", "docker"))
    idents = [j.kwargs["ident"] for j in jobs]
    assert len(set(idents)) == 2
    for ident in idents:
        uuid.UUID(ident)
    assert [j.name for j in jobs] == ["podman", "docker"]


def test_max_parallel_alone_is_a_group_of_one(tmp_path: Path) -> None:
    args = args_for(tmp_path, "--engine", "podman", "--max-parallel", "3", "-i", "a")
    assert args.max_parallel == 3
    [job] = group_jobs(args)
    assert job.name == "1" and job.kwargs["ident"] == "a-1"


def test_two_images_with_one_short_name_are_numbered(tmp_path: Path) -> None:
    args = args_for(tmp_path, "--engine", "podman", "--image", "a/ee:1", "--image", "b/ee:1")
    assert [j.name for j in group_jobs(args)] == ["1-ee_1", "2-ee_1"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--engine", "podman", "--engine", "podman"), "--engine podman given twice"),
        (("--engine", "podman", "--image", "a", "--image", "a"), "--container-image a given twice"),
        (
            (
                "--engine",
                "podman",
                "--engine",
                "docker",
                "--process-isolation-executable",
                "docker",
            ),
            "--process-isolation-executable",
        ),
    ],
)
def test_bad_combinations_are_usage_errors(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        group_jobs(args_for(tmp_path, *extra))


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_max_parallel_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    with pytest.raises(UsageError, match="--max-parallel"):
        args_for(tmp_path, "--max-parallel", value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--engine", "podman", "--engine", "docker"), "--engine given more than once"),
        (("--image", "a", "--image", "b"), "--container-image given more than once"),
        (("--max-parallel", "2"), "--max-parallel works with run"),
    ],
)
def test_start_runs_one_job(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cmd_start(args_for(tmp_path, *extra, command="start"))


def test_names_and_paths() -> None:
    assert image_name("localhost/containerrunner-ee:ansible-core-2.14") == (
        "containerrunner-ee_ansible-core-2.14"
    )
    assert image_name("ee@sha256:abc") == "ee_sha256_abc"
    assert junit_path("out/report.xml", "docker") == "out/report-docker.xml"
    assert junit_path("report", "podman") == "report-podman"


def result(index: int, status: str, rc: int | None, **kw: Any) -> GroupResult:
    fields: dict[str, Any] = {
        "label": f"job {index}", "stats": None, "summary": None, "artifact_dir": None,
        "error": None, "runner": None,
    }  # fmt: skip
    return GroupResult(index=index, status=status, rc=rc, **{**fields, **kw})


def test_the_table_and_the_exit_code() -> None:
    stats = {"ok": {"a": 3, "b": 2}, "changed": {"a": 1}, "failures": {"b": 1}, "dark": {}}
    results = [
        result(0, "successful", 0, stats=stats, artifact_dir="/d/art/x", label="engine=podman"),
        result(1, "canceled", 254, label="engine=docker"),
    ]
    lines = format_table(table_rows(results))
    assert lines == [
        "JOB            STATUS       RC  OK  CHANGED  FAILED  UNREACHABLE  ARTIFACTS",
        "engine=podman  successful    0   5        1       1            0  /d/art/x",
        "engine=docker  canceled    254   -        -       -            -  -",
    ]
    assert group_exit_code(results) == 254
    assert group_exit_code(results[:1]) == 0
    assert group_exit_code([result(0, "failed", 2), result(1, "failed", 4)]) == 4
    assert group_exit_code([result(0, "failed", 254, error="no image"), results[0]]) == 1
    assert group_exit_code([]) == 0


def test_a_namespace_without_run_is_never_a_group() -> None:
    ns = SimpleNamespace(command="start", engine=["podman", "docker"], container_image=None)
    assert is_group(ns) is False  # type: ignore[arg-type]
