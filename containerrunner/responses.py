"""What the utility helpers hand back: the tool's output read the way ansible-runner 2.4 reads it.

Pure functions, no I/O. ansible-runner's helpers never look at the return code: they return
`(stdout, stderr)`, with stdout parsed as JSON when `response_format='json'` (or always, for the
role helpers) and stdout is not empty. A tool that fails therefore shows up as an empty (or
unparsed) response and the tool's message in the error string, not as an exception.

`ansible-doc -F -j` fails on every supported ansible-core (2.14: "Object of type bytes is not
JSON serializable"; 2.19: "... by the 'tagless' profile"), because the plugin file paths are
bytes. The `{plugin: path}` mapping that call should give is read from the text listing instead
(`parse_plugin_files`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from containerrunner.errors import OutputParseError

# One entry of ansible-doc's file listing: `"%-*s %-*.*s" % (width, name, ..., path)`, so the
# name, at least one space, the path and maybe padding (stripped before matching). Names are
# dotted identifiers (`ansible.builtin.ping`, `ping`); paths may hold spaces.
_LISTING_LINE = re.compile(r"(?P<name>[\w.-]+)\s+(?P<path>.+)")
# ansible-doc puts the deprecated ansible.builtin plugins after this heading (their leading
# underscore removed: `_include` is listed as `ansible.builtin.include`).
_DEPRECATED_HEADING = "DEPRECATED:"
# Filters and tests that are Jinja2 builtins have no file; ansible-doc prints their path as
# `None` (it would be `null` in JSON).
_NO_FILE = "None"


def parse_json(out: str) -> Any:
    """JSON output of an Ansible tool; any text before the first `{` (a warning that reached
    stdout, as under runner_mode='pexpect') is dropped first, as ansible-runner does.

    Raises OutputParseError (carrying the raw text) when what is left is not JSON.
    """
    start = out.find("{")
    text = (out[start:] if start >= 0 else out).strip()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OutputParseError(f"output is not valid JSON ({exc})", out) from exc


def parse_response(out: str, response_format: str | None) -> Any:
    """`out` parsed as JSON for response_format='json', else the text as it is.

    Empty (or blank) output stays the text it is, for 'json' too: ansible-runner only parses a
    non-empty response. Raises OutputParseError when 'json' output is not JSON, where
    ansible-runner raises json.JSONDecodeError.
    """
    if response_format != "json" or not out.strip():
        return out
    return parse_json(out)


def parse_plugin_files(out: str) -> dict[str, str | None]:
    """`{plugin name: source file}` from the text of `ansible-doc [-t TYPE] -F` (no `-j`).

    Reads the listing of ansible-core 2.14 to 2.19: `NAME  PATH` lines padded with spaces, an
    optional `DEPRECATED:` section, and `None` for the path of a plugin without a file (mapped
    to None). Lines that start with `[` (`[WARNING]: ...`, which reach stdout when stdout and
    stderr are one stream) are skipped. No plugins give empty output and an empty mapping.
    Raises OutputParseError for a line that is none of these.
    """
    files: dict[str, str | None] = {}
    for line in out.splitlines():
        text = line.strip()
        if not text or text == _DEPRECATED_HEADING or text.startswith("["):
            continue
        match = _LISTING_LINE.fullmatch(text)
        if match is None:
            raise OutputParseError(
                f"not a line of `ansible-doc -F` output (plugin name, then its file): {text!r}",
                out,
            )
        path = match["path"]
        files[match["name"]] = None if path == _NO_FILE else path
    return files


def utility_response(
    out: str, err: str, rc: int, response_format: str | None, *, plugin_files: bool = False
) -> tuple[Any, str]:
    """A utility helper's `(response, error)` from the tool's stdout, stderr and return code.

    The response is `out` read as `response_format` asks (parse_response), or, with
    `plugin_files`, the mapping read from an `ansible-doc -F` listing (parse_plugin_files);
    the error is stderr. As in ansible-runner, a non-zero `rc` is no exception: the caller gets
    what the tool printed, typically an empty response and the tool's message in the error.
    Where that output cannot be parsed (ansible-core 2.14 prints its usage text to stdout on an
    option error), the response is the text as it is instead of the JSONDecodeError
    ansible-runner raises. With rc 0, unparseable output raises OutputParseError.
    """
    if rc != 0 and not out.strip():
        return out, err
    try:
        if plugin_files:
            return parse_plugin_files(out), err
        return parse_response(out, response_format), err
    except OutputParseError:
        if rc != 0:
            return out, err
        raise
