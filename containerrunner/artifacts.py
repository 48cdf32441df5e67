"""The artifacts directory of one job: `<artifact_dir>/<ident>/`.

Layout (ansible-runner's, so tools written for it read ours):
  status, rc                  the final status word and return code
  stdout, stderr              the job's output streams (stderr empty in pexpect mode: merged)
  command                     JSON: argv, cwd, env variable NAMES (never values)
  job_events/<counter>-<uuid>.json   the events the event handler kept, in stream order
  stats.json                  the play recap (Runner.stats), also when events omit event_data
  summary.json                per-task results (results.py; Runner.task_results())
  junit.xml                   the same as JUnit XML, one testcase per task x host (junit.py)
  fact_cache/<host>           Ansible's jsonfile fact cache
  provenance.json             engine + version, image ref + ID, ansible-core version, argv,
                              sha256 of the playbook, inventory and extravars files

Nothing here writes a secret: callers pass env names, never values, and the passwords answered
at prompts never reach a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from containerrunner.errors import ConfigurationError
from containerrunner.tempdirs import OWNER_FILE, Owner, read_owner, write_owner
from containerrunner.validate import check_ident

JOB_EVENTS = "job_events"
STATS_FILE = "stats.json"
FACT_CACHE = "fact_cache"
# What claim() sets aside in a new job's dir so that its status and rc can be written at the
# end even when the job filled the disk (freed by write_result).
RESERVE_FILE = ".containerrunner-reserve"
RESERVE_SIZE = 16384
# ansible-core 2.19+ jsonfile cache: files s<schema>_<host> holding {"__payload__": json}.
PAYLOAD_KEY = "__payload__"
TYPE_KEY = "__ansible_type"
CACHE_SCHEMA = 1


def write_text_atomic(path: str | Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` through a temporary file and a rename: never half-written."""
    directory = os.path.dirname(os.fspath(path)) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ArtifactDir:
    """One job's artifacts directory."""

    def __init__(self, base: str | Path, ident: str, fact_cache: str = FACT_CACHE) -> None:
        self.base = Path(base)
        self.ident = check_ident(ident)
        self.path = self.base / ident
        self.fact_cache_name = fact_cache

    @property
    def job_events(self) -> Path:
        return self.path / JOB_EVENTS

    @property
    def fact_cache(self) -> Path:
        """The jsonfile fact cache dir (`fact_cache`, or the name the job's settings give)."""
        return self.path / self.fact_cache_name

    @property
    def stdout_path(self) -> Path:
        return self.path / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.path / "stderr"

    @property
    def owner_path(self) -> Path:
        return self.path / OWNER_FILE

    def claim(self) -> None:
        """Make the directory for a new job with this ident, or take an earlier one over.

        As in ansible-runner, a new run with an ident replaces that ident's artifacts; the
        fact cache is kept (a later run with the same ident reads it). Refused, with nothing
        touched, while a job with this ident is still running here: the directory holds the
        running job's owner record (`tempdirs.OWNER_FILE`) until `release()`.
        """
        self.base.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(exist_ok=True)
        while True:
            try:
                write_owner(self.path, Owner.current())
                break
            except FileExistsError:
                owner = read_owner(self.path)
                if owner is not None and not owner.gone:
                    raise ConfigurationError(
                        f"ident {self.ident!r}: a job with this ident is still running in "
                        f"{self.path} (process {owner.pid} on {owner.host}); wait for it to "
                        f"end, stop it, or choose another ident"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    self.owner_path.unlink()  # its owner is gone: a stale claim
        for entry in self.path.iterdir():
            if entry.name in (self.fact_cache_name, OWNER_FILE):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        self.job_events.mkdir()
        self.fact_cache.mkdir(exist_ok=True)
        # room for status and rc even when the job fills the disk: write_result frees it first
        (self.path / RESERVE_FILE).write_bytes(b"\0" * RESERVE_SIZE)

    def release(self) -> None:
        """End this process's claim on the directory (the job has ended)."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / RESERVE_FILE).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.owner_path.unlink()

    def write_command(self, argv: Sequence[str], cwd: str, env_names: Iterable[str]) -> None:
        record = {"command": list(argv), "cwd": cwd, "env": sorted(set(env_names))}
        write_text_atomic(self.path / "command", json.dumps(record, indent=2) + "\n")

    def write_result(self, status: str, rc: int | None) -> None:
        """`status` and `rc`; the claim's reserve is freed first, so they fit on a full disk."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / RESERVE_FILE).unlink()
        write_text_atomic(self.path / "status", status)
        write_text_atomic(self.path / "rc", "" if rc is None else str(rc))

    def write_stats(self, stats: Mapping[str, Any] | None) -> None:
        """The play recap (Runner.stats), kept aside: events may carry no event_data."""
        write_text_atomic(self.path / STATS_FILE, json.dumps(stats, indent=2) + "\n")

    def write_provenance(self, record: Mapping[str, Any]) -> None:
        write_text_atomic(self.path / "provenance.json", json.dumps(record, indent=2) + "\n")

    def fact_cache_file(self, host: str) -> Path:
        """The plain-JSON cache file of `host` (ansible-core up to 2.18 reads this one)."""
        if not host or "/" in host or host in (".", ".."):
            raise ConfigurationError(f"invalid host name for the fact cache: {host!r}")
        return self.fact_cache / host

    def _schema_files(self, host: str) -> list[tuple[int, Path]]:
        """ansible-core 2.19+ files `s<schema>_<host>`, newest schema first."""
        found: list[tuple[int, Path]] = []
        for path in self.fact_cache.glob(f"s*_{host}"):
            schema = path.name[1 : -len(host) - 1]
            if schema.isdigit():
                found.append((int(schema), path))
        return sorted(found, reverse=True)

    def get_fact_cache(self, host: str) -> dict[str, Any]:
        """The facts Ansible cached for `host` (jsonfile cache), in either file format.

        ansible-core 2.19 writes `s<schema>_<host>` holding {"__payload__": "<json text>"};
        earlier releases write `<host>` holding the facts as JSON.
        """
        plain = self.fact_cache_file(host)
        schema_files = self._schema_files(host)
        path = schema_files[0][1] if schema_files else plain
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if schema_files and isinstance(data, dict) and PAYLOAD_KEY in data:
                data = untag(json.loads(data[PAYLOAD_KEY]))
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"fact cache file {path} is not valid JSON: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def set_fact_cache(self, host: str, data: Mapping[str, Any]) -> None:
        """Seed the cache for `host` in both formats, so any ansible-core in the EE reads it."""
        self.fact_cache.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dict(data))
        write_text_atomic(self.fact_cache_file(host), text)
        schemas = [schema for schema, _ in self._schema_files(host)] or [CACHE_SCHEMA]
        for schema in schemas:
            envelope = json.dumps({PAYLOAD_KEY: text})
            write_text_atomic(self.fact_cache / f"s{schema}_{host}", envelope)


def untag(value: Any) -> Any:
    """Plain values from ansible-core 2.19's cache encoding of tagged data.

    A tagged value is stored as {"__ansible_type": "...", "value": v, "tags": [...]}: keep v.
    """
    if isinstance(value, dict):
        if TYPE_KEY in value and "value" in value:
            return untag(value["value"])
        return {k: untag(v) for k, v in value.items() if k != TYPE_KEY}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def rotate(base: str | Path, keep: int, protect: str | None = None) -> list[Path]:
    """Remove all but the newest `keep` job directories under `base`; returns the removed.

    Newest by modification time; `protect` (the ident of the job about to run) is never removed.
    """
    if keep <= 0:
        return []
    root = Path(base)
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    kept = [p for p in dirs if p.name == protect]
    removed: list[Path] = []
    for p in dirs:
        if p.name == protect:
            continue
        owner = read_owner(p)
        if owner is not None and not owner.gone:
            continue  # a job still running there
        if len(kept) < keep:
            kept.append(p)
        else:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
