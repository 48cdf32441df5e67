"""`containerrunner run` as a group: one job per engine x image (containerrunner.run_group).

`--engine` or `--container-image` given more than once, or `--max-parallel N`, makes `run` run
the cross product of the engines and images, each job with its own ident (`--ident` plus the
job's name, e.g. `nightly-docker`, or a new uuid each), then print one table row per job:
label, status, rc, the ok/changed/failed/unreachable counts of its recap and its artifacts dir.
The exit code is 0 when every job succeeded, else the worst job's (`common.exit_code`; 1 for a
job that could not start). Ctrl-C (or SIGTERM) cancels the whole group: running jobs are
stopped (their containers removed), pending ones never start. `--junit PATH` writes one report
per job, the job's name inserted before PATH's suffix (`report-docker.xml`).

While the jobs run: on a terminal a live view (one line per job, the group's progress bar),
else one line per failed or unreachable result and per finished job; with `-j` every job's
events as JSON lines and nothing else on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from containerrunner.cli.args import UsageError
from containerrunner.cli.common import debug_status_handler, exit_code, say
from containerrunner.cli.jobcmds import copy_junit, job_artifact_dir, run_kwargs
from containerrunner.cli.progress import (
    JsonDisplay,
    PullLines,
    format_elapsed,
    progress_bar,
    result_of,
)
from containerrunner.cli.signals import CancelOnSignal
from containerrunner.errors import ConfigurationError
from containerrunner.group import Group as JobGroup
from containerrunner.group import GroupProgress, GroupResult, wait_canceling_on_interrupt

PROG = "containerrunner run"
FAILURE_TAIL_LINES = 5
# recap keys (ansible-runner's stats) shown in the table, with their column names
COUNTS: tuple[tuple[str, str], ...] = (
    ("ok", "ok"),
    ("changed", "changed"),
    ("failures", "failed"),
    ("dark", "unreachable"),
)
STATUS_STYLES: Mapping[str, str] = {
    "successful": "green",
    "failed": "bold red",
    "canceled": "yellow",
    "timeout": "bold magenta",
    "running": "cyan",
    "starting": "cyan",
}


@dataclass(frozen=True)
class GroupJob:
    """One job of the group: its `name` (in its ident and --junit file) and run() kwargs."""

    name: str
    kwargs: dict[str, Any]


def is_group(args: argparse.Namespace) -> bool:
    """`run` with more than one engine or image, or with --max-parallel."""
    return args.command == "run" and (
        len(args.engine or ()) > 1
        or len(args.container_image or ()) > 1
        or args.max_parallel is not None
    )


def image_name(image: str) -> str:
    """A short name for an image in idents and file names: `localhost/ee:2.14` -> `ee_2.14`."""
    last = image.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", last).strip("._") or "image"


def _no_repeats(values: Sequence[str], flag: str) -> None:
    for value in values:
        if values.count(value) > 1:
            raise UsageError(f"{flag} {value} given twice; give each value once", PROG)


def group_jobs(args: argparse.Namespace) -> list[GroupJob]:
    """One job per engine x image (engines outer), in the order the flags were given."""
    engines: list[str | None] = list(args.engine or [None])
    images: list[str | None] = list(args.container_image or [None])
    _no_repeats([e for e in engines if e], "--engine")
    _no_repeats([i for i in images if i], "--container-image")
    if len(engines) > 1 and args.process_isolation_executable is not None:
        raise UsageError(
            "--engine given more than once cannot go with --process-isolation-executable "
            f"{args.process_isolation_executable}; give the engines with --engine only",
            PROG,
        )
    pairs = list(itertools.product(engines, images))
    names = []
    for n, (engine, image) in enumerate(pairs, 1):
        parts = [engine] if len(engines) > 1 and engine else []
        parts += [image_name(image)] if len(images) > 1 and image else []
        names.append("-".join(parts) or str(n))
    if len(set(names)) < len(names):  # two images with one short name: number them
        names = [f"{n}-{name}" for n, name in enumerate(names, 1)]
    jobs = []
    for name, (engine, image) in zip(names, pairs, strict=True):
        ident = f"{args.ident}-{name}" if args.ident else str(uuid.uuid4())
        jobs.append(GroupJob(name, run_kwargs(args, engine=engine, image=image, ident=ident)))
    return jobs


def junit_path(target: str, name: str) -> str:
    """`report.xml` + `docker` -> `report-docker.xml` (the name before the suffix)."""
    root, ext = os.path.splitext(target)
    return f"{root}-{name}{ext}"


def row_counts(stats: Mapping[str, Any] | None) -> list[int] | None:
    if not stats:
        return None
    return [sum(int(v) for v in (stats.get(key) or {}).values()) for key, _ in COUNTS]


def table_rows(results: Sequence[GroupResult]) -> list[list[str]]:
    """The table, header first: one row per job."""
    rows = [["JOB", "STATUS", "RC", *(name.upper() for _, name in COUNTS), "ARTIFACTS"]]
    for result in results:
        counts = row_counts(result.stats)
        rows.append(
            [
                result.label,
                result.status,
                "-" if result.rc is None else str(result.rc),
                *(["-"] * len(COUNTS) if counts is None else [str(c) for c in counts]),
                result.artifact_dir or "-",
            ]
        )
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned columns (numbers right-aligned), no wrapping."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    numeric = range(2, 2 + len(COUNTS) + 1)
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def group_exit_code(results: Sequence[GroupResult]) -> int:
    """0 when every job succeeded, else the worst job's code (1: a job could not start)."""
    codes = [1 if r.error else exit_code(r.status, r.rc) for r in results]
    return max(codes, default=0)


class GroupView:
    """What the group shows while it runs and at the end (see the module docstring)."""

    def __init__(self, *, json_mode: bool, quiet: bool, stdout: IO[str], stderr: IO[str]) -> None:
        self.json = JsonDisplay(stdout) if json_mode else None
        self.live_mode = not json_mode and not quiet and _isatty(stdout)
        self.console = Console(file=stdout, highlight=False, soft_wrap=True)
        self.stdout = stdout
        self.stderr = stderr
        self.group: JobGroup | None = None
        self.last: GroupProgress | None = None
        self.started = time.monotonic()
        self.spinner = Spinner("dots", style="cyan")
        self._lock = threading.Lock()
        self._seen: set[Any] = set()
        self.live: Live | None = None
        if self.live_mode:
            self.live = Live(
                get_renderable=self.render,
                console=self.console,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    # -------------------------------------------------------------- per-job handlers
    def handlers(self, label: str) -> dict[str, Callable[..., Any]]:
        def on_event(event: dict[str, Any]) -> bool:
            self.event(label, event)
            return True  # keep it (an event_handler that returns anything else drops it)

        def on_finished(runner: Any) -> None:
            if self.json is None and not self.live_mode:
                with self._lock:
                    self.console.print(f"{label}: {runner.status} (rc {runner.rc})", markup=False)

        handlers: dict[str, Callable[..., Any]] = {
            "event_handler": on_event,
            "finished_callback": on_finished,
        }
        # a job's image pull: its JSON items, else `[label] pull IMAGE: ...` lines (above the
        # live view; on stderr for plain lines)
        if self.json is not None:
            handlers["pull_progress_handler"] = self.json.pull
        else:
            lines = self.console if self.live_mode else Console(file=self.stderr, soft_wrap=True)
            handlers["pull_progress_handler"] = PullLines(lines, self._lock, f"[{label}] ")
        return handlers

    def event(self, label: str, event: dict[str, Any]) -> None:
        key = event.get("uuid") or (event.get("runner_ident"), event.get("counter"))
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        if self.json is not None:
            self.json.event(event)
            return
        result = result_of(event)
        if result is None or result.outcome not in ("failed", "unreachable"):
            return
        with self._lock:
            self.console.print(Text(f"[{label}] {result.line()}", style=STATUS_STYLES["failed"]))

    def progress(self, progress: GroupProgress) -> None:
        self.last = progress

    # -------------------------------------------------------------- live view
    def render(self) -> RenderableType:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column()
        progress = self.last
        head = Text("group ", style="dim")
        done, total = (progress.jobs_done, progress.jobs_total) if progress else (0, 0)
        head.append(f"{done}/{total} jobs done", style="bold")
        head.append(f"  {format_elapsed(time.monotonic() - self.started)}", style="dim")
        grid.add_row(self.spinner, head)
        bar = progress_bar(progress)
        if bar is not None:
            grid.add_row("", bar)
        group = self.group
        if group is not None:
            jobs = progress.jobs if progress else (None,) * len(group.labels)
            for label, runner, job in zip(group.labels, group.runners, jobs, strict=True):
                status = runner.status if runner is not None else "failed"
                line = Text(f"{label}  ")
                line.append(status, style=STATUS_STYLES.get(status, "dim"))
                if job is not None and status == "running":
                    line.append(f"  {job.task or '-'}  {job.completed}/{job.total}", style="dim")
                grid.add_row("", line)
        return Group(grid)

    def start(self, group: JobGroup) -> None:
        self.group = group
        if self.live is not None:
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    # -------------------------------------------------------------- the end
    def finish(self, results: Sequence[GroupResult]) -> None:
        for result in results:  # the job_events files are the record: show what was missed
            if result.runner is not None:
                for event in result.runner.events:
                    self.event(result.label, event)
        if self.json is None:
            rows = table_rows(results)
            if self.live_mode:
                self.console.print(rich_table(rows))
            else:
                for line in format_table(rows):
                    self.console.print(line, markup=False)
        self.stdout.flush()
        for result in results:
            detail = failure_detail(result)
            if detail:
                say(f"{result.label}: {detail}")


def failure_detail(result: GroupResult) -> str:
    """Why a job did not succeed when no failed task result says it: the error that stopped
    it, or the Runner's reason and the tail of its stderr (else stdout)."""
    if result.error:
        return result.error
    counts = row_counts(result.stats)
    runner = result.runner
    if result.status in ("successful", "canceled") or runner is None:
        return ""
    if counts is not None and any(counts[2:]):
        return ""
    parts = [str(runner.reason)] if getattr(runner, "reason", "") else []
    for stream in (runner.stderr, runner.stdout):
        with stream as fh:
            lines = fh.read().rstrip().splitlines()[-FAILURE_TAIL_LINES:]
        if lines:
            parts.append("\n".join(lines))
            break
    return "\n".join(parts)


def rich_table(rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title="Group", title_justify="left")
    for i, name in enumerate(rows[0]):
        numeric = 2 <= i < 3 + len(COUNTS)
        table.add_column(name.lower(), justify="right" if numeric else "left", no_wrap=True)
    for row in rows[1:]:
        cells: list[RenderableType] = list(row)
        cells[1] = Text(row[1], style=STATUS_STYLES.get(row[1], ""))
        table.add_row(*cells)
    return table


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def cmd_run_group(args: argparse.Namespace) -> int:
    if getattr(args, "session", None):
        raise UsageError(
            "--session runs one job in one session's engine and image: it does not go with "
            "--engine/--container-image given more than once or --max-parallel",
            "containerrunner run",
        )
    jobs = group_jobs(args)
    view = GroupView(json_mode=args.json, quiet=args.quiet, stdout=sys.stdout, stderr=sys.stderr)
    with CancelOnSignal().installed() as cancel:
        specs = []
        for job, label in zip(jobs, _labels(jobs), strict=True):
            extra: dict[str, Any] = {"quiet": True, **view.handlers(label)}
            if args.debug:
                extra["status_handler"] = debug_status_handler(job_artifact_dir(job.kwargs))
            specs.append({**job.kwargs, **extra})
        group = JobGroup(
            specs,
            max_parallel=args.max_parallel,
            progress_handler=view.progress,
            cancel_callback=cancel.is_set,
        )
        _check_built(group, args)
        view.start(group)
        try:
            results = wait_canceling_on_interrupt(group.start())
        finally:
            view.stop()
    view.finish(results)
    code = group_exit_code(results)
    if args.junit:  # as for one job: a report that cannot be copied makes the exit code 1
        for job in jobs:
            target = junit_path(args.junit, job.name)
            code = copy_junit(job_artifact_dir(job.kwargs), target) or code
    return code


def _labels(jobs: Sequence[GroupJob]) -> list[str]:
    from containerrunner.group import job_label

    kwargs = [job.kwargs for job in jobs]
    return [job_label(kwargs, i) for i in range(len(kwargs))]


def _check_built(group: JobGroup, args: argparse.Namespace) -> None:
    """Every job must build (as one `run` fails on a bad option before anything runs), and
    several images need a container to run in."""
    for label, error in zip(group.labels, group.build_errors, strict=True):
        if error is not None:
            raise ConfigurationError(f"{label}: {error}" if len(group.labels) > 1 else error)
    if len(args.container_image or ()) > 1:
        for label, runner in zip(group.labels, group.runners, strict=True):
            if runner is not None and not runner.config.process_isolation:
                raise UsageError(
                    f"{label} would run on the host, where the image does not matter: give "
                    "--engine (or --process-isolation) with more than one --container-image",
                    PROG,
                )
