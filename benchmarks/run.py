"""Benchmarks at scale: containerrunner vs bare Ansible / bare engine run vs ansible-runner.

    .venv/bin/python benchmarks/run.py [--smoke] [--rounds N] [--budget S] [--engine E]
                                       [--rows B1,B2,...] [--json FILE]

Rows (see benchmarks/README.md for exactly what each runs):
  B1  run() on the host: 20 hosts x 25 tasks, 50 hosts x 100 tasks
  B2  in a container, per engine: run_command(ansible --version) and run() of examples/demo
  B3  events: a debug loop over local hosts making >= 100,000 events; latency, RSS, loss
  B4  16 run_async container jobs at once vs one after another
  B5  helpers in a container (get_plugin_docs, get_inventory, get_ansible_config): cold,
      warm (a containerrunner.Session, session=; exec'd with preload=False, and preloaded)
      and ansible-runner

Every sample runs in a fresh process (benchmarks/sample.py) with a fresh private data dir;
within a row the methods alternate (the order rotates every round) so a burst of load from
elsewhere hits them alike. This is a measurement, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEMO = REPO / "examples" / "demo"
SAMPLE = HERE / "sample.py"
IMAGE = "localhost/containerrunner-ee:latest"
ENGINES = ("podman", "docker")
HELPERS = ("get_plugin_docs", "get_inventory", "get_ansible_config")
ROWS = ("B1", "B2", "B3", "B4", "B5")
LOCAL_VARS = (
    "[all:vars]\nansible_connection=local\n"
    'ansible_python_interpreter="{{ ansible_playbook_python }}"\n'
)


@dataclass(frozen=True)
class Sizes:
    b1: tuple[tuple[int, int], ...]  # (hosts, tasks)
    b3: tuple[int, int]  # (hosts, loop items per host)
    b4_jobs: int
    helpers: tuple[str, ...]


FULL = Sizes(b1=((20, 25), (50, 100)), b3=(10, 10_000), b4_jobs=16, helpers=HELPERS)
SMOKE = Sizes(b1=((2, 2),), b3=(2, 20), b4_jobs=2, helpers=HELPERS[:1])


# ---------------------------------------------------------------------- workloads
def _inventory(hosts: int) -> str:
    names = "\n".join(f"h{i}" for i in range(hosts))
    return f"[bench]\n{names}\n\n{LOCAL_VARS}"


def hosts_workload(hosts: int, tasks: int) -> Callable[[Path], None]:
    def make(pdd: Path) -> None:
        (pdd / "inventory").write_text(_inventory(hosts), encoding="utf-8")
        steps = "".join(
            f"    - name: Task {t}\n      ansible.builtin.debug:\n"
            f'        msg: "task {t} on {{{{ inventory_hostname }}}}"\n'
            for t in range(tasks)
        )
        play = f"- name: Bench\n  hosts: all\n  gather_facts: false\n  tasks:\n{steps}"
        (pdd / "project").mkdir()
        (pdd / "project" / "bench.yml").write_text(play, encoding="utf-8")

    return make


def loop_workload(hosts: int, items: int) -> Callable[[Path], None]:
    def make(pdd: Path) -> None:
        (pdd / "inventory").write_text(_inventory(hosts), encoding="utf-8")
        play = (
            "- name: Events\n  hosts: all\n  gather_facts: false\n  tasks:\n"
            "    - name: Loop\n      ansible.builtin.debug:\n"
            '        msg: "{{ item }}"\n'
            f'      loop: "{{{{ range({items}) | list }}}}"\n'
        )
        (pdd / "project").mkdir()
        (pdd / "project" / "bench.yml").write_text(play, encoding="utf-8")

    return make


def demo_workload(pdd: Path) -> None:
    shutil.copytree(DEMO, pdd, ignore=shutil.ignore_patterns("artifacts"), dirs_exist_ok=True)
    (pdd / "project" / "bench.yml").write_text(
        (DEMO / "project" / "site.yml").read_text(encoding="utf-8"), encoding="utf-8"
    )


# ---------------------------------------------------------------------- rows
@dataclass
class Method:
    key: str  # "bare", "cr", "ar", "cr-warm", "cr-serial", ...
    label: str
    spec: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    unavailable: str | None = None

    def times(self) -> list[float]:
        return [float(s["seconds"]) for s in self.samples]

    def median(self) -> float | None:
        return statistics.median(self.times()) if self.samples else None


@dataclass
class Row:
    bench: str  # B1..B5
    title: str
    make: Callable[[Path], None]
    methods: list[Method]
    floor: str = "bare"  # the method the ratios are taken against
    unavailable: str | None = None


def _triple(spec: dict[str, Any], bare: str, cr: str, ar: str) -> list[Method]:
    return [
        Method("bare", bare, {**spec, "method": "bare"}),
        Method("cr", cr, {**spec, "method": "cr"}),
        Method("ar", ar, {**spec, "method": "ar"}),
    ]


def build_rows(sizes: Sizes, benches: Sequence[str], engines: Sequence[str]) -> list[Row]:
    play = {"kind": "playbook", "playbook": "bench.yml"}
    rows: list[Row] = []
    if "B1" in benches:
        for hosts, tasks in sizes.b1:
            rows.append(
                Row(
                    "B1", f"run() {hosts} hosts x {tasks} tasks, host",
                    hosts_workload(hosts, tasks),
                    _triple(play, "ansible-playbook", "containerrunner.run", "ansible_runner.run"),
                )
            )  # fmt: skip
    if "B2" in benches:
        for engine in engines:
            cmd = {"kind": "command", "engine": engine}
            rows.append(
                Row(
                    "B2", f"run_command(ansible --version), {engine}", demo_workload,
                    _triple(cmd, f"{engine} run", "containerrunner", "ansible-runner"),
                )
            )  # fmt: skip
            rows.append(
                Row(
                    "B2", f"run() examples/demo, {engine}", demo_workload,
                    _triple({**play, "engine": engine}, f"{engine} run", "containerrunner",
                            "ansible-runner"),
                )
            )  # fmt: skip
    if "B3" in benches:
        hosts, items = sizes.b3
        rows.append(
            Row(
                "B3", f"events: {hosts} hosts x {items}-item loop, host",
                loop_workload(hosts, items),
                _triple(play, "ansible-playbook", "containerrunner.run", "ansible_runner.run"),
            )
        )  # fmt: skip
    if "B4" in benches:
        for engine in engines[:1]:
            jobs = {**play, "kind": "jobs", "jobs": sizes.b4_jobs, "engine": engine}
            rows.append(
                Row(
                    "B4", f"{sizes.b4_jobs} run_async jobs of examples/demo, {engine}",
                    demo_workload,
                    [
                        Method("cr-serial", "containerrunner serial",
                               {**jobs, "method": "cr", "parallel": False}),
                        Method("cr-parallel", "containerrunner parallel",
                               {**jobs, "method": "cr", "parallel": True}),
                        Method("ar-serial", "ansible-runner serial",
                               {**jobs, "method": "ar", "parallel": False}),
                        Method("ar-parallel", "ansible-runner parallel",
                               {**jobs, "method": "ar", "parallel": True}),
                    ],
                    floor="cr-serial",
                )
            )  # fmt: skip
    if "B5" in benches:
        for engine in engines:
            for helper in sizes.helpers:
                spec = {"kind": "helper", "helper": helper, "engine": engine}
                methods = _triple(spec, f"{engine} run", "containerrunner cold", "ansible-runner")
                warm = {**spec, "kind": "warm-helper", "method": "cr"}
                methods[2:2] = [
                    Method("cr-warm-exec", "cr warm, exec (preload=False)",
                           {**warm, "preload": False}),
                    Method("cr-warm", "containerrunner warm (Session)", warm),
                ]  # fmt: skip
                rows.append(Row("B5", f"{helper}, {engine}", demo_workload, methods))
    return rows


# ---------------------------------------------------------------------- sampling
@contextlib.contextmanager
def private_data_dir(make: Callable[[Path], None]) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="crbench-"))
    try:
        pdd = tmp / "pdd"
        pdd.mkdir()
        make(pdd)
        yield pdd
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child_env() -> dict[str, str]:
    """This venv's bin first on PATH (ansible-runner looks up ansible-playbook there),
    podman's CONTAINERS_CONF as scripts/lib/common.sh exports it, and bytecode caching on.

    PYTHONDONTWRITEBYTECODE is dropped: pip compiled ansible-runner's and ansible-core's
    bytecode at install time, while a source checkout under that variable would compile
    containerrunner (and its callback plugin in ansible-playbook) again in every sample, about
    80 ms of the caller's CPU that no installed copy pays. The warm-up round writes the cache.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
    conf_home = env.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    conf = os.path.join(conf_home, "containerrunner", "containers.conf")
    if "CONTAINERS_CONF" not in env and os.path.isfile(conf):
        env["CONTAINERS_CONF"] = conf
    return env


def sample(row: Row, method: Method, timeout: float) -> dict[str, Any]:
    """One sample of `method` in a fresh process and a fresh private data dir."""
    with private_data_dir(row.make) as pdd:
        ident = f"bench-{uuid.uuid4().hex[:12]}"
        spec = {**method.spec, "pdd": str(pdd), "ident": ident}
        argv = [sys.executable, str(SAMPLE), json.dumps(spec)]
        # its own session, so a sample cut short takes its ansible-playbook and forks with it
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
            stdin=subprocess.DEVNULL, start_new_session=True,
        ) as proc:  # fmt: skip
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                _remove_container(spec)
                return {"error": f"no result within {timeout:.0f} s"}
        lines = stdout.strip().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, ValueError):
            tail = (stderr or stdout).strip()[-300:]
            return {"error": f"sample process rc={proc.returncode}: {tail}"}
        return result


def _remove_container(spec: dict[str, Any]) -> None:
    engine = spec.get("engine")
    if engine and spec["method"] == "bare":
        subprocess.run(
            [engine, "rm", "-f", f"crbench_{spec['ident']}"], capture_output=True, timeout=60
        )


#: A sample this long needs no warm-up (imports and caches are noise next to it): a row whose
#: warm-up sample takes longer counts that round as measured and skips further warm-ups.
LONG_SAMPLE = 60.0


def measure(
    row: Row, rounds: int, warmup: int, deadline: float, log: Callable[[str], None]
) -> None:
    """Warm-up rounds (not counted), then up to `rounds` measured ones, alternating methods.
    At least one round is measured; no further round starts past `deadline`. A sample may take
    twice the longest one seen in the row, whatever the budget says (never cut short a
    measurement the budget already paid for)."""
    methods = row.methods
    longest = 0.0
    measured = warmed = 0
    while measured < rounds:
        warming = warmed < warmup and longest <= LONG_SAMPLE
        if measured > 0 and time.monotonic() > deadline:
            log(f"  budget: stopping {row.title} after {measured} round(s)")
            return
        if warming and time.monotonic() > deadline:
            warmed = warmup  # no time for a warm-up
            continue
        shift = (measured + warmed) % len(methods)
        kept: list[tuple[Method, dict[str, Any]]] = []
        for m in methods[shift:] + methods[:shift]:
            if m.unavailable is not None:
                continue
            timeout = max(120.0, 2 * longest, deadline - time.monotonic() + 600)
            result = sample(row, m, timeout=timeout)
            if result.get("error"):
                m.unavailable = str(result["error"])
                m.samples.clear()
                log(f"    {m.key}: n/a ({m.unavailable})")
                continue
            longest = max(longest, float(result["seconds"]))
            kept.append((m, result))
            log(f"    {row.bench} {m.key:<11} {result['seconds']:8.3f} s")
        if warming and longest > LONG_SAMPLE:
            warming = False  # a long row: its warm-up round counts
            log(f"  {row.title}: samples over {LONG_SAMPLE:.0f} s, the warm-up round counts")
        if warming:
            warmed += 1
            continue
        for m, result in kept:
            m.samples.append(result)
        measured += 1
        if not kept:
            return


# ---------------------------------------------------------------------- reporting
def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.3f}x"


def _events(m: Method) -> str:
    counts = sorted({int(s["events"]) for s in m.samples if s.get("events") is not None})
    if not counts:
        return "-"
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def _rss(m: Method) -> str:
    if m.key == "bare" or not m.samples:
        return "-"
    return f"{max(int(s['rss_kb']) for s in m.samples) / 1024:.0f}"


def _cpu(m: Method) -> str:
    if m.key == "bare":
        return "-"
    cpu = [float(s["cpu_s"]) for s in m.samples if s.get("cpu_s") is not None]
    return fmt(statistics.median(cpu)) if cpu else "-"


def _latency(m: Method) -> str:
    lat = [s["latency_ms"] for s in m.samples if s.get("latency_ms")]
    if not lat:
        return "-"
    return f"{statistics.median(x[0] for x in lat):.0f}/{max(x[1] for x in lat):.0f}"


def lost(m: Method) -> str:
    """'none' when every sample delivered each event once: handler count = job_events files =
    counter range; else the first mismatch."""
    for s in m.samples:
        if s.get("files") is None:
            return "-"
        lo, hi = s["counters"]
        span = 0 if lo is None else hi - lo + 1
        if not s["events"] == s["files"] == span:
            return f"handler {s['events']}, files {s['files']}, counters {lo}..{hi}"
    return "none" if m.samples else "-"


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


HEADER = [
    "method", "n", "events", "min s", "median s", "max s", "vs floor", "cr/ar", "RSS MB", "CPU s"
]  # fmt: skip


def row_table(row: Row) -> str:
    by_key = {m.key: m for m in row.methods}
    floor = by_key[row.floor].median()
    extra = row.bench == "B3"
    header = [*HEADER, "lat p50/p99 ms", "lost"] if extra else HEADER
    cells: list[list[str]] = []
    notes: list[str] = []
    for m in row.methods:
        if m.unavailable is not None or not m.samples:
            reason = m.unavailable or "no sample"
            cells.append([m.label, "n/a", *["" for _ in header[2:]]])
            notes.append(f"  {m.label}: n/a ({reason})")
            continue
        times = m.times()
        other = by_key.get("ar" + m.key[2:]) if m.key.startswith("cr") else None
        line = [
            m.label, str(len(times)), _events(m), fmt(min(times)), fmt(m.median()),
            fmt(max(times)), ratio(m.median(), floor),
            ratio(m.median(), other.median()) if other else "", _rss(m), _cpu(m),
        ]  # fmt: skip
        if extra:
            line += [_latency(m), lost(m)]
        cells.append(line)
    title = f"{row.bench} {row.title}"
    return f"{title}\n{render(header, cells)}" + ("\n" + "\n".join(notes) if notes else "")


def row_json(row: Row) -> dict[str, Any]:
    return {
        "bench": row.bench,
        "title": row.title,
        "floor": row.floor,
        "unavailable": row.unavailable,
        "methods": [
            {
                "key": m.key,
                "label": m.label,
                "unavailable": m.unavailable,
                "median": m.median(),
                "lost": lost(m),
                "samples": m.samples,
            }
            for m in row.methods
        ],
    }


# ---------------------------------------------------------------------- environment
def engine_problem(engine: str) -> str | None:
    """None when `engine` answers and holds IMAGE, else why not."""
    exe = shutil.which(engine)
    if exe is None:
        return f"{engine} not found on PATH"
    try:
        subprocess.run(
            [exe, "image", "inspect", IMAGE], capture_output=True, check=True, timeout=60,
            stdin=subprocess.DEVNULL, env=child_env(),
        )  # fmt: skip
    except subprocess.CalledProcessError:
        return f"{engine} has no {IMAGE} (run scripts/build-images)"
    except subprocess.TimeoutExpired:
        return f"{engine} did not answer within 60 s"
    return None


def engine_version(engine: str) -> str:
    fmt_ = "{{.Client.Version}}" if engine == "podman" else "{{.Server.Version}}"
    try:
        out = subprocess.run(
            [engine, "version", "--format", fmt_], capture_output=True, text=True, timeout=60,
            env=child_env(),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip() or "?"


def _dist(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# ---------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round, no warm-up")
    p.add_argument("--rounds", type=int, default=5, help="measured rounds per row (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up rounds per row (default 1)")
    p.add_argument(
        "--budget", type=float, default=1800.0,
        help="seconds for the whole run (default 1800): each row gets an equal share of what "
        "is left; a row measures at least one round, later rows are skipped once it is spent",
    )  # fmt: skip
    p.add_argument(
        "--engine", choices=("podman", "docker", "both"), default="both",
        help="engine(s) for the container rows (default both; B4 uses the first)",
    )  # fmt: skip
    p.add_argument("--rows", default=",".join(ROWS), help="rows to run (default B1,...,B5)")
    p.add_argument(
        "--b3-size", metavar="HOSTSxITEMS", help="B3's size instead of 10x10000 (e.g. 10x1000)"
    )
    p.add_argument("--json", metavar="FILE", help="also write every sample as JSON to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the tables")
    args = p.parse_args(argv)
    args.benches = [b.strip().upper() for b in args.rows.split(",") if b.strip()]
    unknown = sorted(set(args.benches) - set(ROWS))
    if unknown:
        p.error(f"--rows: unknown row(s) {', '.join(unknown)} (known: {', '.join(ROWS)})")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.smoke:
        args.rounds, args.warmup = 1, 0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    container_rows = {"B2", "B4", "B5"} & set(args.benches)
    problems = {e: engine_problem(e) for e in engines} if container_rows else {}
    started = datetime.datetime.now().astimezone()
    machine: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ansible_runner": _dist("ansible-runner"),
        "ansible_core": _dist("ansible-core"),
        "containerrunner": _dist("containerrunner"),
        "engines": {e: engine_version(e) for e in engines if container_rows},
        "loadavg_before": os.getloadavg(),
        "argv": sys.argv[1:] if argv is None else list(argv),
    }
    sizes = SMOKE if args.smoke else FULL
    if args.b3_size:
        hosts, _, items = args.b3_size.partition("x")
        sizes = dataclasses.replace(sizes, b3=(int(hosts), int(items)))
    rows = build_rows(sizes, args.benches, engines)
    t0 = time.monotonic()
    end = t0 + args.budget
    for index, row in enumerate(rows):
        engine = next((m.spec.get("engine") for m in row.methods if m.spec.get("engine")), None)
        if engine and problems.get(engine):
            row.unavailable = problems[engine]
            continue
        now = time.monotonic()
        if now > end:
            row.unavailable = "budget used up"
            continue
        share = (end - now) / (len(rows) - index)
        log(f"{row.bench} {row.title}")
        measure(row, args.rounds, args.warmup, now + share, log)
    machine["loadavg_after"] = os.getloadavg()
    machine["seconds"] = round(time.monotonic() - t0, 1)

    engines_text = ", ".join(f"{e} {v}" for e, v in machine["engines"].items())
    print(
        f"\ncontainerrunner {machine['containerrunner']} vs ansible-runner "
        f"{machine['ansible_runner']}, ansible-core {machine['ansible_core']}, "
        f"Python {machine['python']}{'; ' + engines_text if engines_text else ''}"
    )
    load = f"{machine['loadavg_before'][0]:.2f} -> {machine['loadavg_after'][0]:.2f}"
    print(
        f"{machine['date']}, {machine['cpus']} CPUs, load avg {load}, {machine['seconds']} s; "
        f"up to {args.rounds} round(s) after {args.warmup} warm-up, alternating, "
        "a fresh process per sample\n"
    )
    for row in rows:
        if row.unavailable is not None:
            print(f"{row.bench} {row.title}: n/a ({row.unavailable})\n")
        else:
            print(row_table(row) + "\n")
    print(
        "vs floor: median / the floor's median (bare run; B4: containerrunner serial); "
        "cr/ar: containerrunner / ansible-runner medians;\nRSS MB: peak RSS of the calling "
        "process (max over samples); CPU s: its user+system CPU time (median; children "
        "not counted);\nlat: callback write -> event_handler, median p50 / "
        "max p99;\nlost: none when handler count = job_events files = counter range"
    )
    if args.json:
        data = {"machine": machine, "rows": [row_json(r) for r in rows]}
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
