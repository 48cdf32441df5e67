"""The ground floor of validation: one checker per concept, used by config/, inputs.py,
artifacts.py and the helpers alike. Each raises ConfigurationError naming the option or file
(`source`) and what was wrong; none imports anything of containerrunner but the errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from containerrunner.errors import ConfigurationError

#: the callables a job takes, by ansible-runner's names
HANDLER_NAMES: tuple[str, ...] = (
    "event_handler",
    "status_handler",
    "cancel_callback",
    "finished_callback",
    "artifacts_handler",
    "progress_handler",
    "pull_progress_handler",
)


def kind(value: Any) -> str:
    """`value`'s kind in words, for error messages."""
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}") + f" ({value!r:.60})"


#: the longest ident, in UTF-8 bytes: a file name has at most 255, and the ident is one
MAX_IDENT_BYTES = 200


def check_ident(value: Any) -> str:
    """A job ident (a string, or a number as ansible-runner allows): it names the directory
    artifacts/<ident>, so empty, `/`, `\\`, NUL, `..` and a leading `.` are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigurationError(f"ident must be a string, not {value!r}")
    ident = str(value)
    if not ident.strip():
        raise ConfigurationError("ident must not be empty")
    if any(c in ident for c in "/\\\0") or ".." in ident or ident.startswith("."):
        raise ConfigurationError(
            f"ident {ident!r} must not contain '/', '\\', '..' or NUL, nor start with '.': "
            f"it names the directory artifacts/<ident>"
        )
    try:
        size = len(ident.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigurationError(f"ident {ident!r} is not valid UTF-8 text") from None
    if size > MAX_IDENT_BYTES:
        raise ConfigurationError(
            f"ident {ident[:40]!r}... is {size} bytes long, at most {MAX_IDENT_BYTES}: "
            f"it names the directory artifacts/<ident>"
        )
    return ident


def new_uuid4() -> str:
    """A random (version 4, RFC 4122 variant) UUID in its canonical text form, as
    `str(uuid.uuid4())` gives, without importing `uuid` (which imports `platform`: ~1.4 ms
    of CPU on the first call of a process, docs/benchmarks.md 2026-12-04 22:15)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def job_ident(value: Any) -> str:
    """The ident given (checked), or a new uuid4 when none (None) was given."""
    return new_uuid4() if value is None else check_ident(value)


def check_handlers(given: Mapping[str, Any]) -> dict[str, Any]:
    """The handlers in `given` (HANDLER_NAMES), each None or callable."""
    handlers = {name: given.get(name) for name in HANDLER_NAMES}
    for name, fn in handlers.items():
        if fn is not None and not callable(fn):
            raise ConfigurationError(f"{name} must be callable, not {fn!r}")
    return handlers


def as_str_tuple(value: Any, option: str) -> tuple[str, ...]:
    """A list of strings from a list/tuple of strings; a lone string is refused with a hint."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigurationError(
            f"{option} must be a list of strings, not the string {value!r}; "
            f"use shlex.split({value!r}) to turn a command line into a list"
        )
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{option} must be a list of strings, not {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{option} must contain only strings; found {item!r} ({type(item).__name__})"
            )
    return tuple(items)


def as_env(value: Any, option: str) -> dict[str, str]:
    """A str->str mapping of environment variables; names are checked, values stringified."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{option} must be a mapping of NAME: value, not {value!r}")
    env: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ConfigurationError(f"{option}: invalid environment variable name {name!r}")
        if isinstance(val, bool):
            env[name] = "True" if val else "False"
        elif isinstance(val, str | int | float):
            env[name] = str(val)
        else:
            raise ConfigurationError(
                f"{option}[{name!r}] must be a string or number, not {type(val).__name__}"
            )
    return env


def given_flag(given: Mapping[str, Any], name: str, default: bool | None = False) -> bool:
    """The boolean option `name` of `given` (absent or None: `default`); errors name it."""
    value = given.get(name)
    if value is None:
        return bool(default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r}")
    return value


def as_timeout(value: Any, option: str) -> float | None:
    """None/0 means no timeout; otherwise a positive number of seconds."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{option} must be a number of seconds, not {value!r}")
    if value < 0:
        raise ConfigurationError(f"{option} must not be negative (got {value})")
    return float(value)


#: seconds between SIGTERM and SIGKILL (for a container: the engine's `stop --time`) when a job
#: is stopped, unless the job (`termination_grace`) or the stop request gives another
DEFAULT_TERMINATION_GRACE = 5.0


def as_grace(value: Any, option: str = "termination_grace") -> float:
    """Seconds >= 0 (0: kill at once) between SIGTERM and SIGKILL; None: the default."""
    if value is None:
        return DEFAULT_TERMINATION_GRACE
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(
            f"{option} must be a number of seconds >= 0 (0: kill at once), not {value!r}"
        )
    return float(value)


def parse_passwords(value: Any, source: str) -> dict[str, str]:
    """Prompt answers: a mapping of regular expression -> answer (a string or number)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{source} must be a mapping of prompt regex: answer, not {kind(value)}"
        )
    answers: dict[str, str] = {}
    for pattern, answer in value.items():
        if not isinstance(pattern, str) or not pattern:
            raise ConfigurationError(f"{source}: prompt patterns must be strings, not {pattern!r}")
        try:
            re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise ConfigurationError(
                f"{source}: prompt pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
        if isinstance(answer, bool) or not isinstance(answer, str | int | float):
            raise ConfigurationError(
                f"{source}[{pattern!r}]: the answer must be a string, not {kind(answer)}"
            )
        answers[pattern] = str(answer)
    return answers
