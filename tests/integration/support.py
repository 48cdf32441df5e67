"""Helpers for the integration tests (not tests themselves)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from containerrunner.isolation.engine import Engine
from containerrunner.tempdirs import ours_in_tempdir, read_owner
from tests.conftest import EE_IMAGE

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "demo"
LOCAL_VARS = 'ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"'


@pytest.fixture(autouse=True)
def ansible_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-runner finds the Ansible programs on PATH only: put this venv's bin/ first."""
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")


def container_kwargs(engine: Engine, image: str = EE_IMAGE) -> dict[str, Any]:
    return {
        "process_isolation": True,
        "process_isolation_executable": engine.name,
        "container_image": image,
    }


class Watcher:
    """A file-like output sink that sets `seen` once `needle` has been written."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.text = ""
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        self.text += text
        if self.needle in self.text:
            self.seen.set()
        return len(text)

    def flush(self) -> None:
        return None


def make_vault(plaintext: str, password: str, tmp_path: Path) -> str:
    """An `!vault |` YAML scalar of `plaintext`, made with the host's ansible-vault."""
    pw = tmp_path / ".vault-pw-for-encrypting"
    pw.write_text(password + "\n")
    vault = Path(sys.executable).with_name("ansible-vault")
    out = subprocess.run(
        [str(vault), "encrypt_string", "--vault-password-file", str(pw), plaintext],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pw.unlink()
    return out.strip().replace("\n", "\n      ")


def make_ssh_key(tmp_path: Path) -> str:
    """The text of a new unencrypted ed25519 private key (no file of it is left)."""
    key = tmp_path / "generated-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    text = key.read_text()
    key.unlink()
    os.unlink(f"{key}.pub")
    return text


def copy_examples(tmp_path: Path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(EXAMPLES, dest, ignore=shutil.ignore_patterns("artifacts"))
    return dest


def regular_files(*roots: Path) -> Iterator[str]:
    """The regular files under `roots`: never a FIFO, socket or device (opening a FIFO that
    nobody writes blocks for good), never a link out of the tree."""
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        yield path


def temp_entries() -> set[Path]:
    return set(Path(tempfile.gettempdir()).iterdir())


def new_in_temp(before: set[Path], tmp_path: Path) -> list[Path]:
    """What appeared in the temp dir since `before`, but pytest's own base temp dir."""
    temp_root = Path(tempfile.gettempdir())
    pytest_base = temp_root / tmp_path.relative_to(temp_root).parts[0]
    return sorted(temp_entries() - before - {pytest_base})


def files_containing(secret: str, *roots: Path) -> list[str]:
    found: list[str] = []
    needle = secret.encode()
    for path in regular_files(*roots):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as fh:
            if needle in fh.read():
                found.append(path)
    return found


def our_temp_dirs() -> list[Path]:
    """The containerrunner dirs in the temp dir that this process made (its owner records)."""
    return [
        Path(path)
        for path in ours_in_tempdir()
        if (owner := read_owner(path)) is not None and owner.pid == os.getpid()
    ]


def assert_secret_nowhere(secret: str, *roots: Path) -> None:
    """No file under `roots`, nor in a temp dir this process's jobs made, holds `secret`."""
    found = files_containing(secret, *roots, *our_temp_dirs())
    assert not found, f"secret found in {found}"


def event_shape(events: Any) -> tuple[list[tuple[str, str | None]], list[tuple[str, str, str]]]:
    """What two runs of one playbook must share, whatever order parallel hosts finished in.

    The events without a host (playbook, play and task starts, stats) in order, and the
    per-host events as a sorted multiset of (event, host, task).
    """
    ordered: list[tuple[str, str | None]] = []
    per_host: list[tuple[str, str, str]] = []
    for e in events:
        if e["event"] == "verbose":
            continue
        data = e.get("event_data", {})
        if data.get("host"):
            per_host.append((e["event"], data["host"], data.get("task", "")))
        else:
            ordered.append((e["event"], data.get("task")))
    return ordered, sorted(per_host)


@contextlib.contextmanager
def short_temp_dir(prefix: str) -> Iterator[Path]:
    """A temp dir with a short path, removed afterwards: a private podman store's runroot
    (DIR/run) may be at most 50 characters, which pytest's tmp_path often is not."""
    import tempfile

    tmp = tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp if len(tmp) <= 24 else "/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def recorded_image_ids() -> dict[str, str]:
    """IMAGE -> ID from the recipes' expected-ids for this machine's architecture."""
    import platform

    from containerrunner.cli import images

    ids = {}
    for line in (images.RECIPES / "expected-ids").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#") and parts[1] == platform.machine():
            ids[parts[0]] = parts[2]
    return ids


def built_from_committed_recipe(engine: Engine, image: str) -> bool:
    """Whether `image` in `engine` carries the recipe label the committed recipe gives
    (`build-images --print-hashes`): not built with --base-image or from local relocks."""
    from containerrunner.cli import images

    hashes = subprocess.run(
        ["bash", str(images.BUILD_SCRIPT), "--print-hashes"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    label = subprocess.run(
        engine.command(
            "image", "inspect", "--format", '{{index .Labels "containerrunner.recipe"}}', image
        ),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return dict(zip(hashes[::2], hashes[1::2], strict=True)).get(image) == label


def kill_owner_once_started(script: str, where: dict[str, Any]) -> tuple[int, str]:
    """Run `script` (`python -c`, given `where` as JSON) until it prints its "up" line, then
    SIGKILL it as a crash would; its pid and that line."""
    import json
    import signal

    owner = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(where)], stdout=subprocess.PIPE, text=True,
        cwd=REPO,
    )  # fmt: skip
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line.startswith("up"), f"the job did not start: {line!r}"
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    return owner.pid, line
