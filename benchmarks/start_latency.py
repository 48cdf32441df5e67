"""Time from `run_command()` to the container's process start, engine API vs CLI.

    .venv/bin/python benchmarks/start_latency.py [--rounds N] [--engine podman|docker|both]

Each sample is a fresh process (imports paid like a user's script) that calls
`containerrunner.run_command("sh", ["-c", "date +%s.%N"])` in the EE twice: the container's
process prints its own start time (same kernel clock), minus the wall time taken just before
the call. `first` is a fresh process's first job (the engine library's import and, for podman,
a private API service's start are in it); `second` is the next job of the same process.
`CONTAINERRUNNER_ENGINE_API=cli` gives the CLI column. Modes alternate every round; medians.
A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

IMAGE = "localhost/containerrunner-ee:latest"
SAMPLE = """
import json, sys, time
import containerrunner
out = []
for _ in range(2):
    t0 = time.time()
    stdout, _err, rc = containerrunner.run_command(
        "sh", ["-c", "date +%s.%N"], process_isolation=True,
        process_isolation_executable=sys.argv[1], container_image=sys.argv[2], quiet=True)
    assert rc == 0, stdout
    out.append(float(stdout.strip().splitlines()[-1]) - t0)
print(json.dumps(out))
"""


def sample(engine: str, mode: str) -> list[float]:
    env = {**os.environ, "CONTAINERRUNNER_ENGINE_API": mode}
    proc = subprocess.run(
        [sys.executable, "-c", SAMPLE, engine, IMAGE],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--engine", choices=("podman", "docker", "both"), default="both")
    args = parser.parse_args()
    engines = ("podman", "docker") if args.engine == "both" else (args.engine,)
    print(f"load before: {os.getloadavg()[0]:.2f}")
    for engine in engines:
        got: dict[str, list[list[float]]] = {"cli": [], "auto": []}
        for i in range(args.rounds):
            for mode in ("cli", "auto") if i % 2 == 0 else ("auto", "cli"):
                got[mode].append(sample(engine, mode))
        for mode, label in (("cli", "CLI"), ("auto", "API")):
            first = statistics.median(s[0] for s in got[mode])
            second = statistics.median(s[1] for s in got[mode])
            print(f"{engine:6} {label}: n={len(got[mode])} median first {first:.3f} s, "
                  f"second {second:.3f} s")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
