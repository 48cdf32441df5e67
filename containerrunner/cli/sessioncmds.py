"""`session start|stop|list`: warm EE sessions for scripts (see containerrunner/session.py).

`session start` runs a small holder daemon (the `start` daemon's double fork, cli/daemon.py)
that starts a `containerrunner.Session`, prints its ident once the container runs and then
waits for SIGTERM or SIGINT. The holder is the container's owner (labels, owner record), so
the session lives exactly as long as its holder: `session stop ID` sends it SIGTERM (it closes
the session: container and runtime dir removed) and, should it not end, SIGKILL and removes
both itself; a holder killed by anything else leaves a dead owner, whose container the next
containerrunner job reaps. `run --session ID` / `exec --session ID` exec their job in it.

While the holder pulls the session's image, each PullProgress goes up the daemon's pipe as a
`progress` line (its JSON) and `session start` shows it as `run` does (cli/progress.py
`PullView`: live row, plain lines on stderr, or --json items).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import select
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from containerrunner.cli import daemon
from containerrunner.cli.common import CliError, say
from containerrunner.preload import PRELOAD_DIR
from containerrunner.progress import PullProgress
from containerrunner.runner import CALLBACK_DIR
from containerrunner.session_record import SessionRecord, find_session, live_sessions

if TYPE_CHECKING:
    from containerrunner.cli.progress import PullView

STOP_TIMEOUT = 60.0  # the holder's close() removes the container: an engine round trip
KILL_TIMEOUT = 10.0
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


SESSION_EVENT = "containerrunner_session_started"


def pull_relay(report: Callable[[str], None]) -> Callable[[PullProgress], None]:
    """The holder's pull_progress_handler: each item up the daemon's pipe, as JSON."""

    def relay(item: PullProgress) -> None:
        report(f"{daemon.PROGRESS} {json.dumps(dataclasses.asdict(item), default=str)}")

    return relay


def shown_pull(view: PullView) -> Callable[[str], None]:
    """spawn's on_progress: a relayed item (pull_relay) to `view`; a line that is not one is
    dropped (the holder sends nothing else)."""

    def show(text: str) -> None:
        try:
            item = PullProgress(**json.loads(text))
        except (ValueError, TypeError):
            return
        view.pull(item)

    return show


def cmd_session_start(args: argparse.Namespace) -> int:
    from containerrunner.cli.progress import PullView
    from containerrunner.session import Session

    session = Session(
        image=args.image,
        engine=args.engine,
        mounts=args.mounts,
        container_options=args.container_options,
        container_network=args.container_network,
        pull=args.pull or "missing",
        start_timeout=args.start_timeout,
        ident=args.ident,
    )  # validated here, in the caller: a bad option is an error before any fork
    session.held_by = "cli"

    json_mode = bool(getattr(args, "json", False))
    view = PullView(
        json_mode=json_mode,
        quiet=bool(getattr(args, "quiet", False)),
        stdout=sys.stdout,
        stderr=sys.stderr,
    )

    def hold(report: Callable[[str], None]) -> int:  # runs in the daemon
        got: list[int] = []
        for signum in _STOP_SIGNALS:
            signal.signal(signum, lambda number, frame: got.append(number))
        try:
            session.pull_progress_handler = pull_relay(report)
            session.start()
            # a stop signal from here on is either seen by its handler (`got`) or, blocked,
            # pending for sigwait
            report("started")
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            if not got:
                signal.sigwait(_STOP_SIGNALS)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        finally:
            session.close()
        return 0

    try:
        pid = daemon.spawn(hold, log_path=None, on_progress=shown_pull(view))
    finally:
        view.finish()
    if args.debug:
        say(f"debug: session {session.ident} is held by daemon pid {pid}")
    if json_mode:
        line = json.dumps({"event": SESSION_EVENT, "event_data": {"ident": session.ident}})
        sys.stdout.write(f"{line}\n")
    else:
        sys.stdout.write(f"{session.ident}\n")
    sys.stdout.flush()
    return 0


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether process `pid` ended within `timeout` (its pidfd, not polling)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)


def stop_session(record: SessionRecord) -> None:
    """Stop the holder of `record` and make sure its container and runtime dir are gone."""
    from containerrunner.isolation.engine import ENGINE_NAMES, make_engine
    from containerrunner.isolation.reaper import remove_container
    from containerrunner.tempdirs import remove_dir

    owner = record.owner
    if record.held_by != "cli" or owner is None:
        who = f"process {owner.pid}" if owner else "another process"
        raise CliError(
            f"session {record.ident} is held by {who}, a Python program's "
            f"containerrunner.Session: close it there (only sessions made by "
            f"`containerrunner session start` are stopped here)"
        )
    with contextlib.suppress(ProcessLookupError):
        os.kill(owner.pid, signal.SIGTERM)
    if not _wait_gone(owner.pid, STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner.pid, signal.SIGKILL)
        _wait_gone(owner.pid, KILL_TIMEOUT)
    if os.path.isdir(record.runtime_dir) and record.engine in ENGINE_NAMES:
        # the holder did not get to close it (SIGKILL): do what its close() does
        engine = make_engine(record.engine, record.executable)
        remove_container(engine, record.container)
        remove_dir(record.runtime_dir)


def cmd_session_stop(args: argparse.Namespace) -> int:
    stop_session(find_session(args.session_id))
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    if seconds < 172800:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def user_mounts(record: SessionRecord) -> list[str]:
    """The session's mounts as `SRC[:DST][:ro]`, without its own runtime dir, the callback
    plugin and the preloader."""
    shown = []
    for mount in record.mounts:
        if mount.source in (record.runtime_dir, CALLBACK_DIR, PRELOAD_DIR):
            continue
        text = mount.source if mount.target == mount.source else f"{mount.source}:{mount.target}"
        shown.append(f"{text}:ro" if mount.read_only else text)
    return shown


def cmd_session_list(args: argparse.Namespace) -> int:
    records = live_sessions()
    if args.json:
        for record in records:
            item = record.to_json()
            item.update(
                pid=record.owner.pid if record.owner else None,
                age=round(record.age, 1),
                user_mounts=user_mounts(record),
            )
            sys.stdout.write(json.dumps(item) + "\n")
        return 0
    rows = [("ID", "ENGINE", "IMAGE", "MOUNTS", "AGE", "HELD BY")]
    for record in records:
        held = f"{record.held_by} pid {record.owner.pid}" if record.owner else record.held_by
        mounts = ",".join(user_mounts(record)) or "-"
        rows.append((record.ident, record.engine, record.image, mounts, _age(record.age), held))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        sys.stdout.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
    return 0
