"""`containerrunner cleanup`: remove what dead owners left, and say what was removed."""

from __future__ import annotations

import argparse
import sys

from containerrunner.cli.common import chosen_engines, say


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Remove this user's containers whose owner process on this host is gone (in every
    engine that answers, or the one asked for) and the temp dirs dead owners left; one line
    per thing removed on stdout."""
    from containerrunner import tempdirs
    from containerrunner.isolation.reaper import reap_orphans_owned

    if args.scheduler:
        return _cleanup_scheduler(args.scheduler, args.namespace)

    def absent(name: str, exc: Exception) -> None:
        if args.debug:
            say(f"{name} does not answer: {exc}")

    removed = 0
    # the temp dirs first: a dead owner's dir names its container, which goes with it
    for path in tempdirs.reap_stale():
        print(f"removed {path}")
        removed += 1
    for engine in chosen_engines(args.engine, absent):
        for container in reap_orphans_owned(engine):
            print(
                f"removed {engine.name} container {container['name']} "
                f"(owner pid {container['owner_pid']} is gone)"
            )
            removed += 1
    if not removed:
        say("nothing to remove: no container or temp dir of a dead owner")
    sys.stdout.flush()
    return 0


def _cleanup_scheduler(name: str, namespace: str | None) -> int:
    """Remove the jobs on scheduler `name` whose owner on this host is gone."""
    from containerrunner.cluster.base import backend_for, owner_alive

    try:
        backend = backend_for(name, {"namespace": namespace} if namespace else None)
        gone = backend.reap(owner_alive)
    except Exception as exc:  # the scheduler's client errors: no cluster, no config, denied
        say(f"error: cleanup --scheduler {name}: {type(exc).__name__}: {exc}")
        return 1
    for ref in gone:
        print(f"removed {name} job {ref.id} (owner pid {ref.owner_pid} is gone)")
    if not gone:
        say(f"nothing to remove: no {name} job of a dead owner")
    sys.stdout.flush()
    return 0
