"""One benchmark sample, in a fresh process: `python benchmarks/sample.py SPEC-JSON`.

benchmarks/run.py starts one of these per sample, so every sample pays its own imports and
start-up like a user's script does, and the peak RSS reported (getrusage of this process) is
the calling process's own. SPEC is a JSON object:

    {"method": "bare" | "cr" | "ar", "kind": "...", "pdd": "...", "ident": "...", ...}

The result is one JSON object on the last line of stdout: seconds (the call, timed inside this
process), events (delivered to event_handler), files (job_events/*.json written), counters
(lowest and highest counter delivered), latency_ms (p50/p99 of callback write -> handler),
rss_kb (peak RSS of this process up to the end of the call: a playbook sample's own checks
afterwards, such as counting job_events/, do not count) and error (why the call failed, or null).
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

IMAGE = "localhost/containerrunner-ee:latest"
HELPER_ARGS: dict[str, tuple[list[str], dict[str, Any]]] = {
    # helper name -> (bare CLI argv in the image, keyword arguments of the helper)
    "get_plugin_docs": (
        ["ansible-doc", "-j", "ansible.builtin.debug"],
        {"plugin_names": ["ansible.builtin.debug"], "response_format": "json"},
    ),
    "get_inventory": (
        ["ansible-inventory", "-i", "{pdd}/inventory", "--list"],
        {"action": "list", "inventories": ["{pdd}/inventory"], "response_format": "json"},
    ),
    "get_ansible_config": (["ansible-config", "dump"], {"action": "dump"}),
}


class SampleError(Exception):
    """The call did not succeed; the message says why."""


class Handler:
    """event_handler: counts, notes the counter range and the latency from `created`."""

    def __init__(self) -> None:
        self.count = 0
        self.lo: int | None = None
        self.hi: int | None = None
        self.latency = array("d")
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> bool:
        now = time.time()
        with self.lock:
            self.count += 1
            counter = event.get("counter")
            if isinstance(counter, int):
                self.lo = counter if self.lo is None else min(self.lo, counter)
                self.hi = counter if self.hi is None else max(self.hi, counter)
            created = event.get("created")
            if isinstance(created, str):
                stamp = datetime.datetime.fromisoformat(created)
                if stamp.tzinfo is None:  # ansible-runner writes naive UTC
                    stamp = stamp.replace(tzinfo=datetime.timezone.utc)  # noqa: UP017
                self.latency.append((now - stamp.timestamp()) * 1000.0)
        return True


def _isolation(spec: dict[str, Any]) -> dict[str, Any]:
    engine = spec.get("engine")
    if not engine:
        return {}
    return {
        "process_isolation": True,
        "process_isolation_executable": engine,
        "container_image": IMAGE,
    }


def _check(proc: subprocess.CompletedProcess[bytes]) -> None:
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip()[-300:]
        raise SampleError(f"rc={proc.returncode}: {tail}")


def _bare_argv(spec: dict[str, Any]) -> list[str]:
    """The bare command of the sample: ansible-playbook on the host, or in `<engine> run`."""
    pdd = spec["pdd"]
    kind = spec["kind"]
    if kind == "command":
        inner = ["ansible", "--version"]
    elif kind == "helper":
        inner = [a.replace("{pdd}", pdd) for a in HELPER_ARGS[spec["helper"]][0]]
    else:
        extravars = ["-e", "@env/extravars"] if Path(pdd, "env", "extravars").is_file() else []
        inner = ["ansible-playbook", "-i", "inventory", *extravars, f"project/{spec['playbook']}"]
    engine = spec.get("engine")
    if not engine:
        return [shutil.which(inner[0]) or inner[0], *inner[1:]]
    name = f"crbench_{spec['ident']}"
    return [engine, "run", "--rm", "--name", name, "-v", f"{pdd}:{pdd}", "-w", pdd, IMAGE, *inner]


def _run_bare(spec: dict[str, Any]) -> dict[str, Any]:
    argv = _bare_argv(spec)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=spec["pdd"], capture_output=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    _check(proc)
    return {"seconds": seconds}


def _playbook_call(module: Any, spec: dict[str, Any], handler: Handler, ident: str) -> Any:
    return module.run(
        private_data_dir=spec["pdd"],
        playbook=spec["playbook"],
        ident=ident,
        quiet=True,
        event_handler=handler,
        **_isolation(spec),
    )


def _finished(runner: Any) -> None:
    if runner.status != "successful" or runner.rc != 0:
        raise SampleError(f"status={runner.status} rc={runner.rc}")


def _run_playbook(module: Any, spec: dict[str, Any]) -> dict[str, Any]:
    handler = Handler()
    start = time.perf_counter()
    runner = _playbook_call(module, spec, handler, spec["ident"])
    seconds = time.perf_counter() - start
    rss_kb = _peak_rss_kb()  # before the checks below, which are the harness's, not the caller's
    _finished(runner)
    events_dir = Path(spec["pdd"], "artifacts", spec["ident"], "job_events")
    lat = sorted(handler.latency)
    return {
        "seconds": seconds,
        "rss_kb": rss_kb,
        "events": handler.count,
        "files": _count_event_files(events_dir),
        "counters": [handler.lo, handler.hi],
        "latency_ms": [_pct(lat, 50), _pct(lat, 99)] if lat else None,
    }


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _count_event_files(events_dir: Path) -> int:
    """The job_events/*.json files, counted as the dir is scanned: Path.glob of a
    100,000-file dir held ~37 MB of paths at once, which the peak RSS then reported as the
    caller's."""
    with os.scandir(events_dir) as entries:
        return sum(1 for entry in entries if entry.name.endswith(".json"))


def _run_jobs(module: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """`jobs` playbook runs with run_async, all at once (`parallel`) or one after another."""
    handlers = [Handler() for _ in range(spec["jobs"])]
    idents = [f"{spec['ident']}-{i}" for i in range(spec["jobs"])]
    start = time.perf_counter()
    runners = []
    if spec["parallel"]:
        started = [
            module.run_async(
                private_data_dir=spec["pdd"], playbook=spec["playbook"], ident=ident,
                quiet=True, event_handler=h, **_isolation(spec),
            )
            for ident, h in zip(idents, handlers, strict=True)
        ]  # fmt: skip
        for thread, runner in started:
            thread.join()
            runners.append(runner)
    else:
        runners = [
            _playbook_call(module, spec, h, ident)
            for ident, h in zip(idents, handlers, strict=True)
        ]
    seconds = time.perf_counter() - start
    failed = [r for r in runners if r.status != "successful" or r.rc != 0]
    if failed:
        raise SampleError(f"{len(failed)} of {len(runners)} jobs failed: {failed[0].status}")
    return {"seconds": seconds, "events": sum(h.count for h in handlers)}


def _run_command(module: Any, spec: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    _out, err, rc = module.run_command(
        "ansible", ["--version"], host_cwd=spec["pdd"], quiet=True, **_isolation(spec)
    )
    seconds = time.perf_counter() - start
    if rc != 0:
        raise SampleError(f"rc={rc}: {str(err)[-300:]}")
    return {"seconds": seconds}


def _helper_call(module: Any, spec: dict[str, Any], **extra: Any) -> Callable[[], Any]:
    name = spec["helper"]
    kwargs = {
        k: [a.replace("{pdd}", spec["pdd"]) for a in v] if isinstance(v, list) else v
        for k, v in HELPER_ARGS[name][1].items()
    }
    kwargs.update(extra)
    helper = getattr(module, name)
    return lambda: helper(quiet=True, **kwargs)


def _timed_helper(call: Callable[[], Any]) -> dict[str, Any]:
    """One timed helper call; a call without output is a failed sample."""
    start = time.perf_counter()
    out, err = call()
    seconds = time.perf_counter() - start
    if not out:
        raise SampleError(f"no output: {str(err)[-300:]}")
    return {"seconds": seconds}


def _run_helper(module: Any, spec: dict[str, Any]) -> dict[str, Any]:
    return _timed_helper(_helper_call(module, spec, **_isolation(spec)))


def _run_warm_helper(module: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The helper in a warm `containerrunner.Session` (the `session=` execution option): one
    call to warm it, then the timed call."""
    preload = spec.get("preload", True)  # False: each call exec'd, as before the preloader
    with module.Session(
        image=IMAGE, engine=spec["engine"], mounts=[spec["pdd"]], preload=preload
    ) as session:
        call = _helper_call(module, spec, session=session)
        call()
        return _timed_helper(call)


def _pct(values: Any, pct: float) -> float:
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1])


def run(spec: dict[str, Any]) -> dict[str, Any]:
    method = spec["method"]
    if method == "bare":
        return _run_bare(spec)
    if method == "cr":
        import containerrunner as module
    else:
        import ansible_runner as module  # type: ignore[import-untyped,no-redef]
    # What a script's `from <module> import run, ...` does before it calls anything: resolve
    # the names outside the timed call (containerrunner's top level imports them lazily).
    for name in ("run", "run_async", "run_command", "Session"):
        getattr(module, name, None)
    kind = spec["kind"]
    if kind == "playbook":
        return _run_playbook(module, spec)
    if kind == "jobs":
        return _run_jobs(module, spec)
    if kind == "command":
        return _run_command(module, spec)
    if kind == "helper":
        return _run_helper(module, spec)
    if kind == "warm-helper":
        return _run_warm_helper(module, spec)
    raise SampleError(f"unknown kind {kind!r}")


def main() -> int:
    spec = json.loads(sys.argv[1])
    os.chdir(spec["pdd"])
    try:
        result = run(spec)
        result["error"] = None
    except SampleError as exc:
        result = {"error": str(exc).replace("\n", " ")[:400]}
    except Exception as exc:  # reported to run.py as the sample's error
        result = {"error": f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.setdefault("rss_kb", usage.ru_maxrss)  # a playbook sample took it after the call
    # CPU time of the calling process (not its children): the load-robust cost of the caller
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    sys.stdout.flush()
    print("\n" + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
