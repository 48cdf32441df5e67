"""What `containerrunner run` shows while a job runs, driven by the Runner's event_handler.

- `LiveDisplay` (stdout is a TTY): a rich live view of the current play and task, hosts done
  for the task, running ok/changed/failed/unreachable/skipped counts and the elapsed time;
  failed results are printed above it; at the end a coloured table per host.
- `PlainDisplay` (no TTY, or --quiet): one line per task result (`ok: [web1] => Say hello`),
  then one recap line per host.
- Both: with `show_output` (--show-output), the output a task reported (`stdout` of
  `command`, `shell`, the network `*_command` and `cli_command` modules: per device, per
  command) under its result line; after the recap, each host's failed and unreachable tasks
  with their message (a network device that refused the login, a command that timed out).
- Both, and the group run's lines: a failure that came from the connection layer
  (containerrunner.failures: a refused login, a connect timeout, ...) says so, with its cause:
  `failed: [sw1] => show: connection failure (authentication): Failed to authenticate ...`.
- `JsonDisplay` (--json): each event as one line of JSON on stdout, nothing else.
- All three, while the job's image is pulled (before the job starts), from the Runner's
  `pull_progress_handler`: the live view a `pull IMAGE` line with the layer's bar where the
  engine reports bytes; plain lines one line on stderr per layer step that changed
  (`pull IMAGE: cc0689e332ab Download complete`); --json one line
  `{"event": "containerrunner_image_pull", "event_data": {PullProgress fields}}` per item
  (no `counter`/`uuid`: not an Ansible event, and not in the artifacts).
- `NullDisplay` (a daemonised job): nothing; the artifacts hold everything.
- `PullView` (`session start`, which runs no job): the pull alone, by the same rules — on a
  TTY a live `pull IMAGE` row, else `PullLines` on stderr, with --json the JSON items.

Event handlers run on the Runner's event thread; `Tally` is the state they share with the
live view's refresh thread, behind a lock.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from containerrunner.failures import Failure, classify
from containerrunner.progress import Progress, PullProgress

Event = Mapping[str, Any]

# The per-host counts we keep, in display order, with their colours.
COUNT_KEYS: tuple[str, ...] = ("ok", "changed", "failed", "unreachable", "skipped", "ignored")
STYLES: Mapping[str, str] = {
    "ok": "green",
    "changed": "yellow",
    "failed": "bold red",
    "unreachable": "bold magenta",
    "skipped": "cyan",
    "ignored": "dim red",
    "rescued": "blue",
}
# ansible-runner's stats keys -> ours
STATS_TO_COUNTS: Mapping[str, str] = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "ignored": "ignored",
    "rescued": "rescued",
}
RESULT_EVENTS: Mapping[str, str] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_async_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
_LABELS: Mapping[str, str] = {
    "ok": "ok",
    "changed": "changed",
    "failed": "failed",
    "ignored": "failed",
    "skipped": "skipping",
    "unreachable": "unreachable",
}


OUTPUT_LINES = 40  # the most lines of one result's output shown (the rest is counted)


def format_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class Result:
    """One task result: `outcome` is ok, changed, failed, ignored, skipped or unreachable."""

    outcome: str
    host: str
    task: str
    message: str = ""
    output: tuple[str, ...] = ()  # the result's stdout lines (see output_lines)
    failure: Failure | None = None  # of a failed, ignored or unreachable result

    def problem(self) -> str:
        """`task: message` of a failure, `connection failure (cause): ` before the message of
        one that came from the connection layer (an unreachable one without a known cause says
        nothing more than `unreachable`)."""
        text = self.task
        failure = self.failure
        if failure is not None and failure.kind == "connection" and failure.cause != "unreachable":
            text += f": {failure.label()}"
        if self.message:
            text += f": {self.message}"
        return text

    def line(self) -> str:
        """`ok: [web1] => Say hello`, with the failure (problem()) after the task's name."""
        text = f"{_LABELS[self.outcome]}: [{self.host}] => {self.problem()}"
        if self.outcome == "ignored":
            text += " (ignored)"
        return text


def result_of(event: Event) -> Result | None:
    """The task result an event reports, or None for other events."""
    kind = RESULT_EVENTS.get(str(event.get("event", "")))
    if kind is None:
        return None
    data = event.get("event_data") or {}
    res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
    assert isinstance(res, Mapping)
    host = str(data.get("host") or data.get("remote_addr") or "?")
    task = str(data.get("task") or data.get("task_action") or "?")
    if kind == "ok" and res.get("changed"):
        kind = "changed"
    if kind == "failed" and data.get("ignore_errors"):
        kind = "ignored"
    if kind not in ("failed", "ignored", "unreachable"):
        return Result(kind, host, task, output=_output(res))
    failure = classify(res, unreachable=kind == "unreachable")
    return Result(kind, host, task, _one_line(failure.reason), _output(res), failure)


def _output(res: Mapping[str, Any]) -> tuple[str, ...]:
    """The output lines of a result; of a loop, each item's (`[item]` before its lines)."""
    items = res.get("results")
    if "stdout" in res or not isinstance(items, list):
        return output_lines(res.get("stdout"))
    lines: list[str] = []
    for item in items:
        if isinstance(item, Mapping) and item.get("stdout") not in (None, ""):
            lines += [f"[{_one_line(item.get('item', ''), 80)}]", *output_lines(item["stdout"])]
    return output_lines("\n".join(lines)) if lines else ()


def output_lines(stdout: Any, limit: int = OUTPUT_LINES) -> tuple[str, ...]:
    """A result's `stdout` as display lines: a string (command, cli_command) split into lines;
    a list (the network `*_command` modules: one entry per command, text or parsed JSON)
    with each entry's lines in turn. At most `limit` lines, then `... (N more lines)`."""
    if stdout is None or stdout == "":
        return ()
    entries = stdout if isinstance(stdout, list) else [stdout]
    lines: list[str] = []
    for entry in entries:
        text = entry if isinstance(entry, str) else json.dumps(entry, sort_keys=True)
        lines += text.splitlines() or [""]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return tuple(lines)


def _one_line(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Tally:
    """The running state of a job, built from its events (thread-safe)."""

    started: float = field(default_factory=time.monotonic)
    play: str = ""
    task: str = ""
    task_hosts: set[str] = field(default_factory=set)
    task_done: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] | None = None
    results: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)  # host -> "task: message"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, event: Event) -> Result | None:
        """Take one event into account; returns the task result it reports, if any."""
        name = event.get("event")
        data = event.get("event_data") or {}
        with self.lock:
            if name == "playbook_on_play_start":
                self.play = str(data.get("play") or data.get("name") or "")
                self.task = ""
                self.task_hosts, self.task_done = set(), set()
            elif name in ("playbook_on_task_start", "playbook_on_handler_task_start"):
                self.task = str(data.get("task") or data.get("name") or "")
                self.task_hosts, self.task_done = set(), set()
            elif name == "runner_on_start":
                self.task_hosts.add(str(data.get("host", "")))
            elif name == "playbook_on_stats":
                self.stats = _stats_by_host(data)
            result = result_of(event)
            if result is None:
                return None
            self.results += 1
            if not self.task:
                self.task = result.task
            self.task_hosts.add(result.host)
            self.task_done.add(result.host)
            if result.outcome in ("failed", "unreachable"):
                problem = result.problem()
                if result.outcome == "unreachable":
                    problem += " (unreachable)"
                self.problems.setdefault(result.host, []).append(problem)
            per_host = self.hosts.setdefault(result.host, dict.fromkeys(COUNT_KEYS, 0))
            keys = [result.outcome] if result.outcome != "changed" else ["ok", "changed"]
            for key in keys:
                self.counts[key] += 1
                per_host[key] += 1
            return result

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "play": self.play,
                "task": self.task,
                "done": len(self.task_done),
                "total": len(self.task_hosts),
                "counts": dict(self.counts),
                "elapsed": time.monotonic() - self.started,
            }

    def problem_lines(self) -> list[str]:
        """`host: task: message` for each failed or unreachable result, hosts sorted."""
        with self.lock:
            return [
                f"{host}: {problem}"
                for host in sorted(self.problems)
                for problem in self.problems[host]
            ]

    def per_host(self) -> dict[str, dict[str, int]]:
        """Per-host counts: the final stats when the play recap came, else our own tally."""
        with self.lock:
            if self.stats:
                return {host: dict(c) for host, c in self.stats.items()}
            return {host: dict(c) for host, c in self.hosts.items()}


def progress_bar(progress: Any) -> Table | None:
    """A bar of `progress` (a Progress or GroupProgress: `total`, `completed`) with its
    "completed/total results", or None while nothing is expected."""
    if progress is None or not progress.total:
        return None
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=progress.total, completed=progress.completed, width=30),
        Text(f"{progress.completed}/{progress.total} results", style="dim"),
    )
    return bar


PULL_EVENT = "containerrunner_image_pull"


def _size(count: int) -> str:
    """Bytes as docker prints them (decimal units): 14.4kB, 1.1MB."""
    value = float(count)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}GB"


def pull_line(item: PullProgress) -> str:
    """`pull IMAGE: LAYER STATUS [current/total]` (the plain line; the live view's text)."""
    text = f"pull {item.image}: "
    if item.layer and item.layer not in item.status:
        text += f"{item.layer[:12]} "
    text += item.status
    if item.current is not None and item.total:
        text += f" {_size(item.current)}/{_size(item.total)}"
    return text


class PullLines:
    """A pull_progress_handler printing `pull_line`s to `console`, one per layer step that
    changed (a byte count alone prints nothing): plain lines, and `exec`'s stderr."""

    def __init__(
        self, console: Console, lock: threading.Lock | None = None, prefix: str = ""
    ) -> None:
        self.console = console
        self.prefix = prefix
        self._lock = lock or threading.Lock()
        self._steps: dict[str, str] = {}  # layer -> its last status shown

    def __call__(self, item: PullProgress) -> None:
        if not item.done and self._steps.get(item.layer) == item.status:
            return
        self._steps[item.layer] = item.status
        with self._lock:
            self.console.print(self.prefix + pull_line(item), markup=False, highlight=False)


def pull_row(item: PullProgress | None) -> Table | None:
    """The live view's pull line (with a bar when bytes are known), None when no pull runs."""
    if item is None or item.done:
        return None
    row = Table.grid(padding=(0, 1))
    text = Text(pull_line(item), style="cyan")
    if item.current is not None and item.total:
        row.add_row(ProgressBar(total=item.total, completed=item.current, width=30), text)
    else:
        row.add_row(text)
    return row


def _stats_by_host(data: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """playbook_on_stats event_data ({'ok': {host: n}, 'failures': ...}) -> {host: counts}."""
    hosts: dict[str, dict[str, int]] = {}
    for stats_key, key in STATS_TO_COUNTS.items():
        per_host = data.get(stats_key)
        if not isinstance(per_host, Mapping):
            continue
        for host, value in per_host.items():
            counts = hosts.setdefault(str(host), dict.fromkeys(COUNT_KEYS, 0))
            counts[key] = int(value) if isinstance(value, int) else 0
    processed = data.get("processed")
    if isinstance(processed, Mapping):
        for host in processed:
            hosts.setdefault(str(host), dict.fromkeys(COUNT_KEYS, 0))
    return hosts


def host_style(counts: Mapping[str, int]) -> str:
    if counts.get("unreachable"):
        return STYLES["unreachable"]
    if counts.get("failed"):
        return STYLES["failed"]
    if counts.get("changed"):
        return STYLES["changed"]
    return STYLES["ok"]


def recap_line(host: str, counts: Mapping[str, int]) -> str:
    """`web1 : ok=3 changed=1 unreachable=0 failed=0 skipped=1 ignored=0` (Ansible's recap)."""
    keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
    return f"{host} : " + " ".join(f"{k}={counts.get(k, 0)}" for k in keys)


def summary_table(per_host: Mapping[str, Mapping[str, int]]) -> Table:
    table = Table(title="Play recap", title_justify="left", expand=False)
    table.add_column("host")
    for key in COUNT_KEYS:
        table.add_column(key, justify="right", style=STYLES[key], header_style=STYLES[key])
    for host in sorted(per_host):
        counts = per_host[host]
        table.add_row(
            Text(host, style=host_style(counts)),
            *(str(counts.get(k, 0)) if counts.get(k, 0) else "[dim]0[/]" for k in COUNT_KEYS),
        )
    return table


@dataclass(frozen=True)
class Outcome:
    """How the job ended, for the closing line."""

    status: str
    rc: int | None
    artifact_dir: str
    failure_detail: str = ""


class Display(Protocol):
    tally: Tally

    def start(self) -> None: ...
    def event(self, event: dict[str, Any]) -> None: ...
    def progress(self, progress: Progress) -> None: ...
    def pull(self, item: PullProgress) -> None: ...
    def finish(self, outcome: Outcome | None) -> None: ...


class NullDisplay:
    def __init__(self, show_output: bool = False) -> None:
        self.tally = Tally()
        self.last_progress: Progress | None = None
        self.last_pull: PullProgress | None = None
        self.show_output = show_output

    def start(self) -> None:
        pass

    def progress(self, progress: Progress) -> None:
        """The Runner's progress_handler: the latest Progress (the live view's bar)."""
        self.last_progress = progress

    def pull(self, item: PullProgress) -> None:
        """The Runner's pull_progress_handler (the runner's thread): the latest item."""
        self.last_pull = item

    def event(self, event: dict[str, Any]) -> None:
        self.tally.add(event)

    def finish(self, outcome: Outcome | None) -> None:
        pass


class JsonDisplay(NullDisplay):
    """Each event as one line of JSON (newline-delimited), like ansible-runner's --json."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self._lock = threading.Lock()

    def event(self, event: dict[str, Any]) -> None:
        self.tally.add(event)
        self._write(event)

    def pull(self, item: PullProgress) -> None:
        super().pull(item)
        self._write({"event": PULL_EVENT, "event_data": dataclasses.asdict(item)})

    def _write(self, item: Mapping[str, Any]) -> None:
        line = json.dumps(item, default=str, separators=(",", ":"))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _closing(outcome: Outcome) -> Text:
    style = "green" if outcome.status == "successful" else "bold red"
    rc = "-" if outcome.rc is None else str(outcome.rc)
    text = Text()
    text.append(outcome.status, style=style)
    text.append(f" (rc {rc}); artifacts: {outcome.artifact_dir}")
    return text


class PlainDisplay(NullDisplay):
    """Plain lines: one per task result, then a recap line per host and the status."""

    def __init__(self, stream: IO[str], errors: IO[str], show_output: bool = False) -> None:
        super().__init__(show_output)
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.errors = Console(file=errors, highlight=False, soft_wrap=True)
        self._lock = threading.Lock()
        self._pull_lines = PullLines(self.errors, self._lock)

    def pull(self, item: PullProgress) -> None:
        """A line on stderr per layer step that changed (not per byte count)."""
        super().pull(item)
        self._pull_lines(item)

    def event(self, event: dict[str, Any]) -> None:
        result = self.tally.add(event)
        if result is not None:
            with self._lock:
                self.console.print(result.line(), style=STYLES.get(result.outcome), markup=False)
                if self.show_output:
                    for line in result.output:
                        self.console.print("    " + line, markup=False, highlight=False)

    def finish(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        for host, counts in sorted(self.tally.per_host().items()):
            self.console.print(recap_line(host, counts), style=host_style(counts), markup=False)
        for line in self.tally.problem_lines():
            self.console.print(line, style=STYLES["failed"], markup=False)
        if outcome.failure_detail:
            self.errors.print(outcome.failure_detail, markup=False)
        self.console.print(_closing(outcome))


class LiveDisplay(NullDisplay):
    """A rich live view while the job runs, then a table per host."""

    def __init__(self, console: Console, show_output: bool = False) -> None:
        super().__init__(show_output)
        self.console = console
        self.spinner = Spinner("dots", style="cyan")
        self.live = Live(
            get_renderable=self.render,
            console=console,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def render(self) -> RenderableType:
        snap = self.tally.snapshot()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column()
        play = Text("play ", style="dim")
        play.append(snap["play"] or "(starting)", style="bold")
        grid.add_row(self.spinner, play)
        pulling = pull_row(self.last_pull)
        if pulling is not None:
            grid.add_row("", pulling)
        task = Text("task ", style="dim")
        task.append(snap["task"] or "-", style="bold cyan")
        if snap["total"]:
            task.append(f"  hosts {snap['done']}/{snap['total']}", style="dim")
        grid.add_row("", task)
        bar = progress_bar(self.last_progress)
        if bar is not None:
            grid.add_row("", bar)
        counts = Text()
        for key in COUNT_KEYS:
            value = snap["counts"][key]
            counts.append(f"{key} ", style="dim")
            counts.append(f"{value}  ", style=STYLES[key] if value else "dim")
        counts.append(format_elapsed(snap["elapsed"]), style="bold")
        grid.add_row("", counts)
        return Group(grid)

    def start(self) -> None:
        self.live.start()

    def pull(self, item: PullProgress) -> None:
        super().pull(item)
        self.live.refresh()  # each step drawn, also for a pull shorter than a refresh

    def event(self, event: dict[str, Any]) -> None:
        result = self.tally.add(event)
        if result is not None:
            output = result.output if self.show_output else ()
            if output or result.outcome in ("failed", "unreachable"):
                self.console.print(Text(result.line(), style=STYLES[result.outcome]))
            if output:
                self.console.print(Text("\n".join("    " + line for line in output)))
        self.live.refresh()

    def finish(self, outcome: Outcome | None) -> None:
        self.live.stop()
        if outcome is None:
            return
        per_host = self.tally.per_host()
        if per_host:
            self.console.print(summary_table(per_host))
        for line in self.tally.problem_lines():
            self.console.print(Text(line, style=STYLES["failed"]))
        if outcome.failure_detail:
            self.console.print(Text(outcome.failure_detail, style="red"))
        elapsed = format_elapsed(time.monotonic() - self.tally.started)
        self.console.print(_closing(outcome).append(f"; {elapsed}", style="dim"))


class PullView:
    """What `session start` shows while its image is pulled: a live pull row when stdout is
    a TTY (and not --quiet), plain `pull_line`s on stderr otherwise, JSON items (PULL_EVENT)
    on stdout with --json: `run`'s rules. The live view starts with the first item (after
    the holder daemon's fork: no refresh thread is forked)."""

    def __init__(self, *, json_mode: bool, quiet: bool, stdout: IO[str], stderr: IO[str]) -> None:
        self.json = JsonDisplay(stdout) if json_mode else None
        self.live: Live | None = None
        self.last: PullProgress | None = None
        self.lines: PullLines | None = None
        if self.json is None and not quiet and _isatty(stdout):
            self.live = Live(
                get_renderable=self.render,
                console=Console(file=stdout),
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
        elif self.json is None:
            self.lines = PullLines(Console(file=stderr, highlight=False, soft_wrap=True))
        self._started = False

    def render(self) -> RenderableType:
        return pull_row(self.last) or Text("")

    def pull(self, item: PullProgress) -> None:
        self.last = item
        if self.json is not None:
            self.json.pull(item)
        elif self.lines is not None:
            self.lines(item)
        elif self.live is not None:
            if not self._started:
                self._started = True
                self.live.start()
            self.live.refresh()

    def finish(self) -> None:
        """Ends the live view (nothing to do for the others); safe to call twice."""
        if self.live is not None and self._started:
            self._started = False
            self.live.stop()


def choose_display(
    *, json_mode: bool, quiet: bool, stdout: IO[str], stderr: IO[str], show_output: bool = False
) -> Display:
    """--json: JSON lines; a TTY without --quiet: the live view; else plain lines."""
    if json_mode:
        return JsonDisplay(stdout)
    if not quiet and _isatty(stdout):
        return LiveDisplay(Console(file=stdout), show_output)
    return PlainDisplay(stdout, stderr, show_output)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
