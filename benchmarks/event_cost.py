"""CPU cost per event of the callback plugin (inside Ansible) and of the caller.

CPU time, not wall time (the machine may be shared): each sample is a fresh process that runs
B1's playbook one way and reports user+sys seconds of the Ansible process tree
(``RUSAGE_CHILDREN``) and of itself (``RUSAGE_SELF``, minus its imports):

- ``bare``: ``ansible-playbook`` with Ansible's ``default`` stdout callback;
- ``plugin``: ``ansible-playbook`` with the containerrunner callback writing its events to a
  FIFO drained by a thread of the sampling process (the runner's setup, without the runner);
- ``run``: ``containerrunner.run()`` of the same playbook (caller = the whole library).

plugin µs/event = (Ansible CPU with the plugin - bare) / events; caller µs/event = the
sampling process's CPU during ``run()`` / events. Medians over ``--rounds`` alternating
rounds::

    .venv/bin/python benchmarks/event_cost.py [--hosts 20] [--tasks 25] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import child_env, hosts_workload

MODES = ("bare", "plugin", "run")


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _drain(fd: int, counts: list[int]) -> None:
    while chunk := os.read(fd, 65536):
        counts[0] += chunk.count(b"\n{")


def _sample(mode: str, hosts: int, tasks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cr-cost-") as tmp:
        pdd = Path(tmp)
        hosts_workload(hosts, tasks)(pdd)
        argv = ["ansible-playbook", "-i", "inventory", "project/bench.yml"]
        env = dict(os.environ)
        if mode == "run":
            import containerrunner

            counted = [0]

            def handler(event: dict[str, Any]) -> bool:
                counted[0] += 1
                return True

            self_before = _cpu(resource.RUSAGE_SELF)
            r = containerrunner.run(
                private_data_dir=str(pdd), playbook="bench.yml", quiet=True, event_handler=handler
            )
            caller = _cpu(resource.RUSAGE_SELF) - self_before
            if r.rc != 0:
                raise SystemExit(f"run() failed: {r.status} rc={r.rc}")
            return {
                "ansible": _cpu(resource.RUSAGE_CHILDREN),
                "caller": caller,
                "events": counted[0],
            }
        counts = [0]
        if mode == "plugin":
            from containerrunner.runner import CALLBACK_DIR

            fifo = pdd / "fifo"
            os.mkfifo(fifo)
            env.update(
                ANSIBLE_STDOUT_CALLBACK="containerrunner",
                ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
                ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                CONTAINERRUNNER_ARTIFACT_DIR=str(pdd / "artifacts"),
                CONTAINERRUNNER_EVENT_FIFO=str(fifo),
                CONTAINERRUNNER_IDENT="cost",
            )
            read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(read_fd, True)
            keep_fd = os.open(fifo, os.O_WRONLY)  # no EOF before Ansible has exited
            reader = threading.Thread(target=_drain, args=(read_fd, counts))
            reader.start()
        try:
            subprocess.run(argv, cwd=pdd, env=env, stdout=subprocess.DEVNULL, check=True)
        finally:
            if mode == "plugin":
                os.close(keep_fd)
                reader.join()
                os.close(read_fd)
        return {"ansible": _cpu(resource.RUSAGE_CHILDREN), "events": counts[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample:
        print(json.dumps(_sample(args.sample, args.hosts, args.tasks)))
        return 0
    got: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    size = ["--hosts", str(args.hosts), "--tasks", str(args.tasks)]
    for r in range(args.rounds):
        for mode in MODES[r % 3 :] + MODES[: r % 3]:
            out = subprocess.run(
                [sys.executable, __file__, "--sample", mode, *size],
                env=child_env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            got[mode].append(json.loads(out))
    bare = statistics.median(s["ansible"] for s in got["bare"])
    events = max(s["events"] for s in got["run"])
    print(f"{args.hosts} hosts x {args.tasks} tasks, {events} events, {args.rounds} rounds")
    print(f"ansible-playbook CPU s (median): bare {bare:.3f}", end="")
    for mode in ("plugin", "run"):
        print(f", {mode} {statistics.median(s['ansible'] for s in got[mode]):.3f}", end="")
    print()
    plugin = [(s["ansible"] - bare) / events * 1e6 for s in got["plugin"]]
    caller = [s["caller"] / events * 1e6 for s in got["run"]]
    print(
        f"plugin us/event: median {statistics.median(plugin):.0f} "
        f"(min {min(plugin):.0f}, max {max(plugin):.0f})"
    )
    print(
        f"caller us/event: median {statistics.median(caller):.0f} "
        f"(min {min(caller):.0f}, max {max(caller):.0f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
