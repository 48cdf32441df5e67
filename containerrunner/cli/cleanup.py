"""`containerrunner cleanup`: remove what dead owners left, and say what was removed."""

from __future__ import annotations

import argparse
import sys

from containerrunner.cli.common import say
from containerrunner.errors import EngineError


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Remove this user's containers whose owner process on this host is gone (in every
    engine that answers, or the one asked for) and the temp dirs dead owners left; one line
    per thing removed on stdout."""
    from containerrunner import tempdirs
    from containerrunner.isolation.engine import ENGINE_NAMES, detect_engine
    from containerrunner.isolation.reaper import reap_orphans_owned

    names = ENGINE_NAMES if args.engine == "auto" else (args.engine,)
    removed = 0
    # the temp dirs first: a dead owner's dir names its container, which goes with it
    for path in tempdirs.reap_stale():
        print(f"removed {path}")
        removed += 1
    for name in names:
        try:
            engine = detect_engine(name)
        except EngineError as exc:
            if args.engine != "auto":
                raise
            if args.debug:
                say(f"{name} does not answer: {exc}")
            continue
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
