"""`transmit`: a run() request as a job stream (the caller's side, before a worker runs it).

The stream is the job's keyword arguments, the private data dir as a zip and the eof line, in
ansible-runner 2.4.3's format. What stays with the caller is not sent: the handlers (they are
`process`'s), `private_data_dir` and `artifact_dir` (the caller's paths) and the private data
dir's `artifacts/` (earlier runs' output). Passwords, `ssh_key` and `envvars` travel here once,
in the payload; a worker never sends them back.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import IO, Any

from containerrunner.config.run import reject_unknown
from containerrunner.errors import ConfigurationError
from containerrunner.streaming import archive, wire
from containerrunner.validate import HANDLER_NAMES

#: keyword arguments that name the caller's side and are not sent to the worker
CALLER_SIDE = frozenset({"private_data_dir", "artifact_dir", *HANDLER_NAMES})


def job_side(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options given (not None) that are not the caller's side (CALLER_SIDE)."""
    return {k: v for k, v in kwargs.items() if v is not None and k not in CALLER_SIDE}


def job_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a worker gets: given (not None), known, JSON, with an ident."""
    reject_unknown(kwargs)
    sent = job_side(kwargs)
    for name, value in sent.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"transmit: keyword argument {name!r} cannot travel in a job stream "
                f"(it must be JSON data): {exc}"
            ) from None
    sent.setdefault("ident", uuid.uuid4().hex)
    return sent


def transmit(output: IO[bytes], **kwargs: Any) -> str:
    """Write the job stream for run(**kwargs) to `output`; returns the job's ident.

    `private_data_dir` is required; bad keyword arguments raise ConfigurationError before
    anything is written.
    """
    pdd = kwargs.get("private_data_dir")
    if not isinstance(pdd, str | os.PathLike) or not os.path.isdir(pdd):
        raise ConfigurationError(
            f"transmit: private_data_dir must be an existing directory, not {pdd!r}"
        )
    sent = job_kwargs(kwargs)
    payload = archive.zip_dir(pdd, skip=("artifacts",))
    wire.write_kwargs(output, sent)
    wire.write_zip(output, payload)
    wire.write_eof(output)
    return str(sent["ident"])
