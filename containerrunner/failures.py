"""Where a failed result's failure came from: the connection to the host, or the task itself.

Ansible reports a host it could not reach over SSH as `unreachable` (a `runner_on_unreachable`
event, `unreachable: true` in the result): that is structured, and always a `connection`
failure. Network devices are different: netcommon's `network_cli` (paramiko or libssh) opens the
device's session in a persistent connection and reports a refused login, a connect timeout or a
shell it could not set up through the module, as a plain `failed` result (open upstream bugs:
https://github.com/ansible-collections/ansible.netcommon/issues/340 and
https://github.com/ansible-collections/ansible.netcommon/issues/810). Only the message tells
those apart from a failing command, so `CONNECTION_MESSAGES` below is the one table of the
connection layer's messages (paramiko, libssh / ansible-pylibssh, netcommon, OpenSSH), each
pattern with the `cause` it names. The stats, the recap and the buckets keep Ansible's status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CONNECTION_MESSAGES", "Cause", "Failure", "FailureKind", "classify"]

FailureKind = Literal["connection", "task"]
Cause = Literal[
    "authentication", "timeout", "refused", "host_key", "shell", "session", "unreachable"
]


@dataclass(frozen=True)
class Failure:
    """A failed (or unreachable) result's classification: `kind` `connection` or `task`; for
    a connection failure its `cause` (None for a task failure); `reason` the result's message."""

    kind: FailureKind
    reason: str
    cause: Cause | None = None

    def label(self) -> str:
        """`connection failure (authentication)` or `task failure`, for display."""
        return f"connection failure ({self.cause})" if self.kind == "connection" else "task failure"


# (cause, pattern, who says it). A failed result is matched at the start of its message (after
# the wrappers in _WRAPPERS), so a task that merely mentions e.g. "Connection refused" (a `uri`
# task) stays a task failure; an unreachable result's message is searched (OpenSSH's words come
# after ansible's "Failed to connect to the host via ssh: ..."). The first match wins. Every
# entry has unit tests with the messages seen from that library (tests/unit/test_failures.py).
CONNECTION_MESSAGES: tuple[tuple[Cause, re.Pattern[str], str], ...] = (
    (
        "authentication",
        re.compile(r"Failed to authenticate|Authentication failed"),
        "paramiko, libssh",
    ),
    ("authentication", re.compile(r"Permission denied \("), "ssh"),
    ("timeout", re.compile(r"Timeout connecting to"), "libssh"),
    ("refused", re.compile(r"Connection refused"), "libssh, ssh"),
    ("refused", re.compile(r"\[Errno [^]]*\] Unable to connect to port \d+ on"), "paramiko"),
    ("host_key", re.compile(r"The authenticity of host|host key mismatch for"), "paramiko, libssh"),
    (
        "host_key",
        re.compile(
            r"Using a SSH password instead of a key is not possible because Host Key checking"
        ),
        "ssh",
    ),
    ("shell", re.compile(r"unable to set terminal parameters"), "netcommon"),
    ("session", re.compile(r"No existing session"), "paramiko"),
)
# what wraps the connection layer's own words: ansible-core 2.19's "Task failed: ", netcommon's
# libssh plugin ("ssh connection failed: "), pylibssh ("ssh connect failed: "), the host key
# prompts of netcommon's plugins ("paramiko: ", "libssh: ")
_WRAPPERS = re.compile(
    r"^(?:Task failed: |ssh connection failed: |ssh connect failed: |paramiko: |libssh: )*"
)


def _message(res: Mapping[str, Any]) -> str:
    for key in ("msg", "reason", "stderr"):
        value = res.get(key)
        if value:
            return str(value).strip()
    return ""


def connection_cause(message: str, *, anywhere: bool = False) -> Cause | None:
    """The connection-layer cause `message` names (CONNECTION_MESSAGES): at its start (after
    the wrappers), or `anywhere` in it. None when it names none."""
    text = message if anywhere else _WRAPPERS.sub("", message, count=1)
    for cause, pattern, _source in CONNECTION_MESSAGES:
        if (pattern.search if anywhere else pattern.match)(text):
            return cause
    return None


def classify(res: Any, *, unreachable: bool = False) -> Failure:
    """The Failure of a failed result `res` (`unreachable`: Ansible reported it unreachable)."""
    res = res if isinstance(res, Mapping) else {}
    reason = _message(res)
    if unreachable or res.get("unreachable") is True:
        return Failure(
            "connection", reason, connection_cause(reason, anywhere=True) or "unreachable"
        )
    cause = connection_cause(reason)
    if cause is not None:
        return Failure("connection", reason, cause)
    return Failure("task", reason)
