"""tests/tempdir_check.py, the session-end check of the temp dir, on real dirs."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests import tempdir_check
from tests.tempdir_check import Entry, is_private, known_reason, listing, new_entries


def test_a_new_entry_is_named_and_one_there_before_is_not(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    before = listing(str(tmp_path))
    (tmp_path / "ansible_ansible.legacy.command_payload_x").mkdir()
    (tmp_path / "a-file").write_text("")
    os.symlink("/nowhere", tmp_path / "a-link")  # listed, never followed
    left = new_entries(before, listing(str(tmp_path)))
    payload = "ansible_ansible.legacy.command_payload_x"
    assert [e.name for e in left] == ["a-file", "a-link", payload]


def test_a_name_made_again_on_another_inode_is_new(tmp_path: Path) -> None:
    (tmp_path / "again").mkdir()
    (tmp_path / "same").mkdir()
    after = listing(str(tmp_path))
    before = {**after, "again": Entry("again", after["again"].inode + 1, os.getuid(), 0.0)}
    assert [e.name for e in new_entries(before, after)] == ["again"]


def test_known_entries_are_left_out_with_their_reason(tmp_path: Path) -> None:
    before = listing(str(tmp_path))
    (tmp_path / "pytest-of-someone").mkdir()
    assert new_entries(before, listing(str(tmp_path))) == []
    reason = known_reason("pytest-of-root")
    assert reason is not None and "pytest" in reason
    assert known_reason(".ansible-runner-abc") is None
    only = {"x-*": "a reason"}
    assert [e.name for e in new_entries(before, listing(str(tmp_path)), only)] == [
        "pytest-of-someone"
    ]


def test_private_means_nobody_else_may_write(tmp_path: Path) -> None:
    run_own = tmp_path / "own"
    run_own.mkdir(mode=0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    assert is_private(str(run_own))
    assert not is_private(str(shared))
    assert not is_private("/tmp")
    assert not is_private(str(tmp_path / "missing"))


def test_shared_suspects_are_this_user_s_made_during_the_session() -> None:
    now = time.time()
    entries = [
        Entry("mine-new", 1, os.getuid(), now),
        Entry("mine-old", 2, os.getuid(), now - 3600),
        Entry("someone-else-s", 3, os.getuid() + 1, now),
    ]
    suspects = tempdir_check.shared_suspects(entries, since=now - 60)
    assert [e.name for e in suspects] == ["mine-new"]
