"""What a cluster job's container prints, for every backend: its output as `CRS` text lines.

A scheduler's log pipeline carries text lines, not the bootstrap's binary stream (it ends with
a zip), so the wrapper in the container (`wrapper_source`, standard library only) runs the
bootstrap with the payload on its stdin and prints its stdout as `CRS SEQ BASE64` lines, then
`CRS END RC`. The backend reading the log drops a SEQ it has seen (a reconnect reads some lines
twice) and stops at the END line.
"""

from __future__ import annotations

import base64

#: the wrapper's part after `meta` (command, env) and `data` (the payload) are read
_RUN_AND_PRINT = r"""
env = dict(os.environ)
env.update(meta["env"])
proc = subprocess.Popen(meta["command"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
def feed():
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except OSError:
        pass
threading.Thread(target=feed, daemon=True).start()
out = sys.stdout
seq = 0
fd = proc.stdout.fileno()
while True:
    chunk = os.read(fd, 3072)
    if not chunk:
        break
    out.write("CRS %d %s\n" % (seq, base64.b64encode(chunk).decode()))
    out.flush()
    seq += 1
out.write("CRS END %d\n" % proc.wait())
out.flush()
"""


def wrapper_source(read_inputs: str) -> str:
    """The wrapper's text for `python3 -c`: `read_inputs` (the backend's own lines) sets
    `meta` ({"command", "env"}) and `data` (the payload's bytes) from where it mounts them."""
    return "import base64, json, os, subprocess, sys, threading\n" + read_inputs + _RUN_AND_PRINT


def split_payload(payload: bytes, size: int) -> list[bytes]:
    """The payload in parts of at most `size` bytes (one empty part for an empty payload)."""
    return [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]


def parse_line(line: str) -> tuple[str, int, bytes] | None:
    """("data", seq, bytes) or ("end", rc, b"") for a wrapper line; None for any other."""
    parts = line.strip().split(" ")
    if len(parts) != 3 or parts[0] != "CRS":
        return None
    if parts[1] == "END":
        return ("end", int(parts[2]), b"")
    return ("data", int(parts[1]), base64.b64decode(parts[2]))
