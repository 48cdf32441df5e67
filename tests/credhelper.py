"""A fake docker credential helper for tests: `docker-credential-crtest`, a real executable
speaking the docker-credential-helpers protocol (`get`, the server on stdin, the JSON
`{"ServerURL", "Username", "Secret"}` on stdout). It answers from its environment, never
from a file: CRTEST_USER, CRTEST_SECRET; CRTEST_MODE `fail` (exit 1 with a message), `none`
(the protocol's not-found answer), `token` (an identity token), else the user and secret.
Each call appends `ARGS|SERVER` to CRTEST_LOG when set."""

from __future__ import annotations

import os
from pathlib import Path

NAME = "crtest"
PROGRAM = f"docker-credential-{NAME}"

SCRIPT = r"""#!/bin/sh
read -r server
[ -n "$CRTEST_LOG" ] && printf '%s|%s\n' "$*" "$server" >>"$CRTEST_LOG"
[ "$1" = get ] || { echo "unsupported: $1"; exit 2; }
user=$CRTEST_USER
case "$CRTEST_MODE" in
  fail) echo "the vault is locked"; exit 1 ;;
  none) echo "credentials not found in native keychain"; exit 1 ;;
  token) user="<token>" ;;
esac
printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "$server" "$user" "$CRTEST_SECRET"
"""


def install(directory: Path) -> Path:
    """Write the helper into `directory` (put it on PATH yourself); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PROGRAM
    path.write_text(SCRIPT)
    os.chmod(path, 0o755)
    return path
