"""Wall-clock benchmark: containerrunner vs ansible-runner vs bare Ansible, in one run.

    .venv/bin/python benchmarks/run.py [--repeat N] [--engine podman|docker|both] [--json FILE]

Every method runs the same playbook (a fresh copy of examples/demo per run: 5 tasks over 3
local hosts). Methods are interleaved round-robin (the order rotates every round) so machine
noise hits all of them alike; round 0 is a warm-up and is not counted. Times are printed as
median and min, and as ratios: host rows against bare `ansible-playbook`, container rows
against a bare `<engine> run ... ansible-playbook`, and containerrunner against ansible-runner.

A second, smaller benchmark measures event delivery: a 300-item `debug` loop on localhost,
run on the host, counting the events each runner hands to `event_handler`.

This is a measurement, not a test: nothing here asserts a timing. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ansible_runner  # type: ignore[import-untyped]  # noqa: E402

import containerrunner  # noqa: E402

DEMO = REPO / "examples" / "demo"
IMAGE = "localhost/containerrunner-ee:latest"
ENGINES = ("podman", "docker")
EVENT_LOOP_ITEMS = 300
EVENTS_PLAYBOOK = f"""\
- name: Event throughput
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Debug loop
      ansible.builtin.debug:
        msg: "item {{{{ item }}}}"
      loop: "{{{{ range({EVENT_LOOP_ITEMS}) | list }}}}"
"""
# Bare ansible-playbook arguments, relative to the private data dir (its cwd).
DEMO_ARGS = ("-i", "inventory", "-e", "@env/extravars", "project/site.yml")
EVENTS_ARGS = ("-i", "inventory", "project/events.yml")


class MethodError(Exception):
    """A method did not run the playbook successfully; the message says why."""


@dataclass
class Counter:
    """An event_handler that counts events and notes when the first and last arrived."""

    count: int = 0
    first: float | None = None
    last: float | None = None

    def __call__(self, event: dict[str, Any]) -> bool:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.count += 1
        return True


@dataclass(frozen=True)
class Outcome:
    seconds: float
    events: int | None  # events delivered to event_handler; None for bare runs
    window: float | None  # seconds from the first to the last event delivered
    warning: str | None = None  # e.g. events written but not delivered


RunFn = Callable[[Path, str], Outcome]


@dataclass
class Method:
    key: str
    group: str  # "host", "podman" or "docker"
    label: str
    fn: RunFn
    floor: bool = False  # the bare run the group's ratios are taken against
    counterpart: str | None = None  # key of the ansible-runner row to compare with
    samples: list[Outcome] = field(default_factory=list)
    unavailable: str | None = None
    warnings: list[str] = field(default_factory=list)

    def times(self) -> list[float]:
        return [s.seconds for s in self.samples]


# ---------------------------------------------------------------------- environment
def prepare_environment() -> None:
    """PATH with this venv's bin first (ansible-runner looks up ansible-playbook on PATH), and
    podman's CONTAINERS_CONF as scripts/lib/common.sh exports it."""
    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", os.defpath)
    conf_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    conf = os.path.join(conf_home, "containerrunner", "containers.conf")
    if "CONTAINERS_CONF" not in os.environ and os.path.isfile(conf):
        os.environ["CONTAINERS_CONF"] = conf


def engine_problem(engine: str) -> str | None:
    """None when `engine` answers and holds IMAGE, else why not."""
    exe = shutil.which(engine)
    if exe is None:
        return f"{engine} not found on PATH"
    try:
        subprocess.run(
            [exe, "version"], capture_output=True, check=True, timeout=30, stdin=subprocess.DEVNULL
        )
        subprocess.run(
            [exe, "image", "inspect", IMAGE],
            capture_output=True,
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as exc:
        return f"`{' '.join(exc.cmd)}` failed (image not built? run scripts/build-images)"
    except subprocess.TimeoutExpired:
        return f"{engine} did not answer within 30 s"
    return None


def engine_version(engine: str) -> str:
    fmt = "{{.Client.Version}}" if engine == "podman" else "{{.Server.Version}}"
    try:
        out = subprocess.run(
            [engine, "version", "--format", fmt], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip() or "?"


@contextlib.contextmanager
def private_data_dir() -> Iterator[Path]:
    """A fresh copy of examples/demo plus the events playbook, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="crbench-"))
    try:
        pdd = tmp / "pdd"
        shutil.copytree(DEMO, pdd, ignore=shutil.ignore_patterns("artifacts"))
        (pdd / "project" / "events.yml").write_text(EVENTS_PLAYBOOK, encoding="utf-8")
        yield pdd
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def new_ident() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------- methods
def _check_proc(proc: subprocess.CompletedProcess[bytes]) -> None:
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip()[-300:]
        raise MethodError(f"rc={proc.returncode}: {tail}")


def bare_host(args: Sequence[str]) -> RunFn:
    playbook = shutil.which("ansible-playbook") or "ansible-playbook"

    def fn(pdd: Path, ident: str) -> Outcome:
        start = time.perf_counter()
        proc = subprocess.run(
            [playbook, *args], cwd=pdd, capture_output=True, stdin=subprocess.DEVNULL
        )
        seconds = time.perf_counter() - start
        _check_proc(proc)
        return Outcome(seconds, None, None)

    return fn


def bare_engine(engine: str, args: Sequence[str]) -> RunFn:
    def fn(pdd: Path, ident: str) -> Outcome:
        name = f"crbench_{ident}"
        argv = [
            engine, "run", "--rm", "--name", name, "-v", f"{pdd}:{pdd}", "-w", str(pdd),
            IMAGE, "ansible-playbook", *args,
        ]  # fmt: skip
        start = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
        except BaseException:
            subprocess.run([engine, "rm", "-f", name], capture_output=True, timeout=60)
            raise
        seconds = time.perf_counter() - start
        _check_proc(proc)
        return Outcome(seconds, None, None)

    return fn


def _check_runner(
    status: str | None, rc: int | None, counter: Counter, stdout: str, pdd: Path, ident: str
) -> str | None:
    """Raises MethodError when the run failed; returns a warning when event_handler saw fewer
    events than the run wrote to artifacts/<ident>/job_events."""
    if status != "successful" or rc != 0:
        raise MethodError(f"status={status} rc={rc}: {stdout.strip()[-300:]}")
    if counter.count == 0:
        raise MethodError("the playbook ran but no event reached event_handler")
    written = len(list((pdd / "artifacts" / ident / "job_events").glob("*.json")))
    if written != counter.count:
        return f"event_handler got {counter.count} of {written} events written"
    return None


def _window(counter: Counter) -> float | None:
    if counter.first is None or counter.last is None:
        return None
    return counter.last - counter.first


def containerrunner_run(playbook: str, engine: str | None) -> RunFn:
    isolation: dict[str, Any] = {}
    if engine is not None:
        isolation = {
            "process_isolation": True,
            "process_isolation_executable": engine,
            "container_image": IMAGE,
        }

    def fn(pdd: Path, ident: str) -> Outcome:
        counter = Counter()
        start = time.perf_counter()
        r = containerrunner.run(
            private_data_dir=str(pdd),
            playbook=playbook,
            ident=ident,
            quiet=True,
            event_handler=counter,
            **isolation,
        )
        seconds = time.perf_counter() - start
        with r.stdout as out, r.stderr as err:
            warning = _check_runner(r.status, r.rc, counter, out.read(), pdd, ident)
            if warning:
                warning += f"; stderr: {err.read().strip()[-300:]!r}"
        return Outcome(seconds, counter.count, _window(counter), warning)

    return fn


def ansible_runner_run(playbook: str, engine: str | None) -> RunFn:
    isolation: dict[str, Any] = {}
    if engine is not None:
        isolation = {
            "process_isolation": True,
            "process_isolation_executable": engine,
            "container_image": IMAGE,
        }

    def fn(pdd: Path, ident: str) -> Outcome:
        counter = Counter()
        start = time.perf_counter()
        try:
            r = ansible_runner.run(
                private_data_dir=str(pdd),
                playbook=playbook,
                ident=ident,
                quiet=True,
                event_handler=counter,
                **isolation,
            )
        except Exception as exc:
            raise MethodError(f"{type(exc).__name__}: {exc}") from exc
        seconds = time.perf_counter() - start
        warning = _check_runner(r.status, r.rc, counter, r.stdout.read(), pdd, ident)
        return Outcome(seconds, counter.count, _window(counter), warning)

    return fn


def demo_methods(engines: Sequence[str]) -> list[Method]:
    methods = [
        Method("host.bare", "host", "ansible-playbook (bare)", bare_host(DEMO_ARGS), floor=True),
        Method(
            "host.cr",
            "host",
            "containerrunner.run",
            containerrunner_run("site.yml", None),
            counterpart="host.ar",
        ),
        Method("host.ar", "host", "ansible_runner.run", ansible_runner_run("site.yml", None)),
    ]
    for engine in engines:
        problem = engine_problem(engine)
        group = [
            Method(
                f"{engine}.bare",
                engine,
                f"{engine} run ... ansible-playbook (bare)",
                bare_engine(engine, DEMO_ARGS),
                floor=True,
            ),
            Method(
                f"{engine}.cr",
                engine,
                "containerrunner.run(process_isolation)",
                containerrunner_run("site.yml", engine),
                counterpart=f"{engine}.ar",
            ),
            Method(
                f"{engine}.ar",
                engine,
                "ansible_runner.run(process_isolation)",
                ansible_runner_run("site.yml", engine),
            ),
        ]
        for m in group:
            m.unavailable = problem
        methods += group
    return methods


def event_methods() -> list[Method]:
    return [
        Method(
            "events.bare", "host", "ansible-playbook (bare)", bare_host(EVENTS_ARGS), floor=True
        ),
        Method(
            "events.cr",
            "host",
            "containerrunner.run",
            containerrunner_run("events.yml", None),
            counterpart="events.ar",
        ),
        Method("events.ar", "host", "ansible_runner.run", ansible_runner_run("events.yml", None)),
    ]


# ---------------------------------------------------------------------- measuring
def measure(methods: list[Method], repeat: int, budget: float, log: Callable[[str], None]) -> int:
    """Round 0 warms up (and finds methods that cannot run); rounds 1..repeat are measured.
    Stops starting rounds once `budget` seconds have passed (after at least one measured
    round). Returns the number of measured rounds."""
    start = time.perf_counter()
    rounds = 0
    for rnd in range(repeat + 1):
        if rnd > 1 and time.perf_counter() - start > budget:
            log(f"  budget of {budget:.0f} s used up: stopping after {rounds} measured round(s)")
            break
        shift = rnd % len(methods)
        order = methods[shift:] + methods[:shift]
        log(f"  round {rnd}{' (warm-up)' if rnd == 0 else ''}")
        for m in order:
            if m.unavailable is not None:
                continue
            with private_data_dir() as pdd:
                try:
                    outcome = m.fn(pdd, new_ident())
                except MethodError as exc:
                    m.unavailable = str(exc).replace("\n", " ")
                    m.samples.clear()
                    log(f"    {m.key}: n/a ({m.unavailable})")
                    continue
            if rnd > 0:
                m.samples.append(outcome)
            if outcome.warning:
                m.warnings.append(f"round {rnd}: {outcome.warning}")
            log(f"    {m.key:<12} {outcome.seconds:7.3f} s  {outcome.warning or ''}")
        if rnd > 0:
            rounds += 1
    return rounds


def median(m: Method | None) -> float | None:
    if m is None or not m.samples:
        return None
    return statistics.median(m.times())


def event_counts(m: Method) -> str:
    """The events delivered per run: one number, or min-max when runs differ."""
    counts = [s.events for s in m.samples if s.events is not None]
    if not counts:
        return "-"
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def warnings_text(methods: Sequence[Method]) -> str:
    lines = [f"  WARNING {m.key} {w}" for m in methods for w in m.warnings]
    return "\n" + "\n".join(lines) if lines else ""


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def demo_table(methods: list[Method]) -> str:
    by_key = {m.key: m for m in methods}
    floors = {m.group: median(m) for m in methods if m.floor}
    rows = []
    for m in methods:
        if m.unavailable is not None:
            rows.append([m.group, m.label, f"n/a ({m.unavailable})", "", "", "", "", ""])
            continue
        med = median(m)
        other = by_key.get(m.counterpart) if m.counterpart else None
        events = event_counts(m)
        rows.append(
            [
                m.group,
                m.label,
                str(len(m.samples)),
                events,
                fmt_s(med),
                fmt_s(min(m.times())),
                ratio(med, floors.get(m.group)),
                ratio(med, median(other)) if other is not None else "",
            ]
        )
    header = ["group", "method", "n", "events", "median s", "min s", "vs bare", "cr/ar"]
    # Put long n/a reasons on one line of their own rather than widening the columns.
    table_rows = [
        r if not r[2].startswith("n/a") else [*r[:2], "", "", "", "", "", ""] for r in rows
    ]
    text = render(header, table_rows)
    notes = [f"  {r[0]} / {r[1]}: {r[2]}" for r in rows if r[2].startswith("n/a")]
    return text + ("\n" + "\n".join(notes) if notes else "") + warnings_text(methods)


def events_table(methods: list[Method]) -> str:
    by_key = {m.key: m for m in methods}
    floor = median(by_key["events.bare"])
    rows = []
    for m in methods:
        if m.unavailable is not None:
            rows.append([m.label, f"n/a ({m.unavailable})", "", "", "", "", ""])
            continue
        med = median(m)
        counted = [s for s in m.samples if s.events]
        events = statistics.median(s.events or 0 for s in counted) if counted else None
        per_s = [(s.events or 0) / s.seconds for s in counted]
        stream = [(s.events or 0) / s.window for s in counted if s.window]
        overhead = (
            f"{(med - floor) / events * 1000:.2f}"
            if events and med is not None and floor is not None
            else "-"
        )
        rows.append(
            [m.label, str(len(m.samples)), event_counts(m), fmt_s(med),
             f"{statistics.median(per_s):.0f}" if per_s else "-",
             f"{statistics.median(stream):.0f}" if stream else "-", overhead]
        )  # fmt: skip
    header = ["method", "n", "events", "median s", "ev/s run", "ev/s stream", "ms/event vs bare"]
    text = render(header, rows)
    cr, ar = by_key["events.cr"], by_key["events.ar"]
    if cr.samples and ar.samples:
        text += (
            f"\ncontainerrunner/ansible-runner wall time: {ratio(median(cr), median(ar))} "
            "(lower is better for containerrunner)"
        )
    return text + warnings_text(methods)


# ---------------------------------------------------------------------- profiling
def profile(engines: Sequence[str], log: Callable[[str], None]) -> None:
    """cProfile one containerrunner.run per mode (in this process: the parent's overhead only;
    the Ansible child is a separate process) and print the top functions."""
    modes: list[str | None] = [None, *engines]
    for engine in modes:
        fn = containerrunner_run("site.yml", engine)
        with private_data_dir() as pdd:
            fn(pdd, new_ident())  # warm
        with private_data_dir() as pdd:
            prof = cProfile.Profile()
            prof.enable()
            fn(pdd, new_ident())
            prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("cumulative").print_stats(r"containerrunner|subprocess", 25)
        log(f"\n== cProfile of containerrunner.run ({engine or 'host'}), cumulative ==")
        log(buf.getvalue())


# ---------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="measured rounds (default 5)")
    p.add_argument(
        "--engine", choices=("podman", "docker", "both"), default="podman",
        help="engine(s) for the container rows (default podman)",
    )  # fmt: skip
    p.add_argument("--json", metavar="FILE", help="also write the samples as JSON to FILE")
    p.add_argument(
        "--budget", type=float, default=150.0,
        help="stop starting demo rounds after this many seconds (default 150)",
    )  # fmt: skip
    p.add_argument(
        "--event-repeat", type=int, default=3,
        help="measured rounds of the event benchmark (default 3; 0 skips it)",
    )  # fmt: skip
    p.add_argument(
        "--profile", action="store_true",
        help="afterwards, cProfile one containerrunner.run per mode",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print only the tables")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_environment()

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    started = datetime.datetime.now().astimezone()
    machine: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ansible_runner": getattr(ansible_runner, "__version__", None) or _dist("ansible-runner"),
        "ansible_core": _dist("ansible-core"),
        "containerrunner": containerrunner.__version__,
        "engines": {e: engine_version(e) for e in engines},
        "loadavg_before": os.getloadavg(),
    }
    log(f"demo playbook: host + {', '.join(engines)}")
    demo = demo_methods(engines)
    rounds = measure(demo, args.repeat, args.budget, log)
    ev: list[Method] = []
    if args.event_repeat > 0:
        log(f"event benchmark: {EVENT_LOOP_ITEMS}-item debug loop on localhost")
        ev = event_methods()
        measure(ev, args.event_repeat, args.budget, log)
    machine["loadavg_after"] = os.getloadavg()

    engines_text = ", ".join(f"{e} {v}" for e, v in machine["engines"].items())
    print(
        f"\ncontainerrunner {machine['containerrunner']} vs ansible-runner "
        f"{machine['ansible_runner']}, ansible-core {machine['ansible_core']}; {engines_text}"
    )
    print(
        f"{machine['date']}, {machine['cpus']} CPUs, load avg "
        f"{machine['loadavg_before'][0]:.2f} -> {machine['loadavg_after'][0]:.2f}; "
        f"{rounds} measured round(s) after 1 warm-up, round-robin\n"
    )
    print("examples/demo (5 tasks x 3 local hosts), wall-clock seconds per run:")
    print(demo_table(demo))
    print(
        "vs bare: median / median of the group's bare run (host: ansible-playbook; "
        "container: <engine> run ... ansible-playbook)\ncr/ar: containerrunner median / "
        "ansible-runner median in the same group (<1 means containerrunner is faster)"
    )
    if ev:
        print(f"\nEvent delivery, {EVENT_LOOP_ITEMS}-item debug loop on localhost (host):")
        print(events_table(ev))
        print(
            "ev/s run: events / wall time; ev/s stream: events / (last - first event delivered)"
            " (medians over runs);"
            "\nms/event vs bare: (median - bare ansible-playbook median) / events"
        )
    if args.json:
        data = {
            "machine": machine,
            "demo": [_method_json(m) for m in demo],
            "events": [_method_json(m) for m in ev],
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if args.profile:
        profile(engines, lambda text: print(text))
    return 0


def _method_json(m: Method) -> dict[str, Any]:
    return {
        "key": m.key,
        "group": m.group,
        "label": m.label,
        "unavailable": m.unavailable,
        "warnings": m.warnings,
        "seconds": m.times(),
        "events": [s.events for s in m.samples],
        "event_window_seconds": [s.window for s in m.samples],
        "median": median(m),
        "min": min(m.times()) if m.samples else None,
    }


def _dist(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
