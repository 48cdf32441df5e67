"""Secrets (issue 11, item 3): one job drives every secret-bearing path of run() with its own
marker — `passwords` answering a prompt, a vault password file given with `--vault-id`,
`envvars` marked secret, extravars given as keyword arguments, `ssh_key` — and the CLI's
`exec --password`; afterwards no file under the private data dir, the artifacts, this process's
runtime dirs or anything that appeared in the temp dir during the test holds a marker, nor
does the CLI's output. While the job runs, the generated extravars file is 0600 and, in a container,
the vault password file is mounted read-only; both are gone at the end.

(Registry credentials, `container_auth_data`: tests/integration/test_registry.py.)
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.errors import ArtifactWriteError
from containerrunner.isolation.engine import Engine
from tests.integration.support import (
    copy_examples,
    files_containing,
    make_ssh_key,
    make_vault,
    new_in_temp,
    our_temp_dirs,
    temp_entries,
)

MARKERS = {
    "prompt": "Prompt-Marker-7a1c",
    "vault": "Vault-Marker-3b2d",
    "env": "Env-Marker-9e4f",  # 15 characters
    "extravar": "Extravar-Marker-5c6",  # 19 characters
}


def assert_no_marker(roots: list[Path], *texts: str) -> None:
    for name, marker in MARKERS.items():
        found = files_containing(marker, *roots)
        assert not found, f"the {name} secret is in {found}"
        for text in texts:
            assert marker not in text, f"the {name} secret is in the output"


def test_no_secret_reaches_a_file(where: dict[str, Any], tmp_path: Path) -> None:
    before = temp_entries()
    pdd = copy_examples(tmp_path)
    secret_dir = tmp_path / "secret"  # the caller's own files, outside the private data dir
    secret_dir.mkdir(mode=0o700)
    vault_pw = secret_dir / "vault-pass"
    vault_pw.write_text(MARKERS["vault"] + "\n")
    vault_pw.chmod(0o600)
    vaulted = make_vault("vault-open", MARKERS["vault"], secret_dir)
    key_text = make_ssh_key(secret_dir)
    key_body = key_text.splitlines()[2]
    (pdd / "project" / "secrets.yml").write_text(
        "- hosts: db1\n  gather_facts: false\n"
        "  vars_prompt:\n    - name: favourite\n      prompt: Favourite colour\n"
        "      private: true\n"
        "  vars:\n    hidden: " + vaulted + "\n"
        "  tasks:\n"
        "    - assert:\n        quiet: true\n        that:\n"
        "          - favourite | length == 18\n"
        "          - hidden == 'vault-open'\n"
        "          - db_password | length == 19\n"
        "          - lookup('env', 'API_TOKEN') | length == 15\n"
        "    - shell: ssh-add -l\n      changed_when: false\n"
    )
    seen_during_run: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> bool:
        if event["event"] == "playbook_on_start":
            runtime = [p for p in our_temp_dirs() if (p / "extravars.json").exists()]
            seen_during_run["modes"] = [
                stat.S_IMODE((p / "extravars.json").stat().st_mode) for p in runtime
            ]
        return True

    r = containerrunner.run(
        private_data_dir=str(pdd),
        playbook="secrets.yml",
        cmdline=f"--vault-id lab@{vault_pw}",
        passwords={"Favourite colour": MARKERS["prompt"]},
        envvars={"API_TOKEN": MARKERS["env"]},
        secret_envvars=["API_TOKEN"],
        extravars={"db_password": MARKERS["extravar"]},
        ssh_key=key_text,
        event_handler=on_event,
        quiet=True,
        **where,
    )
    with r.stdout as fh:
        out = fh.read()
    assert r.status == "successful", out
    assert seen_during_run["modes"] == [0o600]  # the generated extravars file, while it ran
    if where.get("process_isolation"):
        provenance = (Path(r.artifact_dir) / "provenance.json").read_text()
        assert f"{vault_pw}:{vault_pw}:ro" in provenance  # mounted read-only
    assert not our_temp_dirs()  # runtime dirs (extravars, agent socket, FIFO) are gone
    roots = [pdd, *new_in_temp(before, tmp_path)]
    assert_no_marker(roots, out)
    assert not files_containing(key_body, *roots)
    assert files_containing(MARKERS["vault"], secret_dir) == [str(vault_pw)]  # the sweep sees


@pytest.mark.parametrize("given", ["--password", "--passwords-file"])
def test_the_cli_password_reaches_no_file_and_no_output(
    engine: Engine, given: str, tmp_path: Path
) -> None:
    before = temp_entries()
    work = tmp_path / "work"
    work.mkdir()
    vaulted = work / "vaulted.yml"
    secret_dir = tmp_path / "secret"  # the caller's passwords file, outside what is swept
    secret_dir.mkdir(mode=0o700)
    pw = secret_dir / ".pw"
    pw.write_text(MARKERS["vault"] + "\n")
    subprocess.run(
        [str(Path(sys.executable).with_name("ansible-vault")), "encrypt",
         "--vault-password-file", str(pw), "--output", str(vaulted), "-"],
        input="opened: yes\n", text=True, check=True, capture_output=True,
    )  # fmt: skip
    pw.unlink()
    if given == "--password":
        answer = ["--password", f"Vault password.*:={MARKERS['vault']}"]
    else:
        answers = secret_dir / "passwords.yml"
        answers.write_text(f"'Vault password.*': {MARKERS['vault']}\n")
        answers.chmod(0o600)
        answer = ["--passwords-file", str(answers)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "containerrunner", "exec", "--engine", engine.name, *answer,
         "--", "ansible-vault", "view", str(vaulted)],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "opened: yes" in proc.stdout
    roots = [work, *new_in_temp(before, tmp_path)]
    assert_no_marker(roots, proc.stdout, proc.stderr)
    assert not our_temp_dirs()
    if given == "--passwords-file":  # the sweep sees the one place the secret belongs
        assert files_containing(MARKERS["vault"], secret_dir) == [str(secret_dir / "passwords.yml")]


def test_no_secret_reaches_a_file_when_the_artifacts_disk_is_full(
    where: dict[str, Any], tmp_path: Path
) -> None:
    """The artifacts dir on a 256 KiB tmpfs that the job's output fills, mid-run: the job fails
    naming the dir, and no secret is in what was written before or after the disk was full."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    before = temp_entries()
    pdd = copy_examples(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)], check=True)
    try:
        (tmp_path / "secret").mkdir(mode=0o700)
        key_text = make_ssh_key(tmp_path / "secret")
        key_body = key_text.splitlines()[2]
        (pdd / "project" / "full.yml").write_text(
            "- hosts: db1\n  gather_facts: false\n"
            "  vars_prompt:\n    - name: favourite\n      prompt: Favourite colour\n"
            "      private: true\n"
            "  tasks:\n"
            "    - assert:\n        quiet: true\n        that:\n"
            "          - favourite | length == 18\n"
            "          - db_password | length == 19\n"
            "          - lookup('env', 'API_TOKEN') | length == 15\n"
            "    - debug: {msg: \"{{ 'x' * 2000 }} {{ item }}\"}\n"
            '      loop: "{{ range(300) | list }}"\n'
        )
        with pytest.raises(ArtifactWriteError, match=f"in {full}/full1"):
            containerrunner.run(
                private_data_dir=str(pdd), playbook="full.yml", artifact_dir=str(full),
                ident="full1", quiet=True,
                passwords={"Favourite colour": MARKERS["prompt"]},
                envvars={"API_TOKEN": MARKERS["env"]}, secret_envvars=["API_TOKEN"],
                extravars={"db_password": MARKERS["extravar"]}, ssh_key=key_text, **where,
            )  # fmt: skip
        assert (full / "full1" / "status").read_text() == "failed"
        written = [json.loads(f.read_text()) for f in (full / "full1" / "job_events").iterdir()]
        assert any(  # the secrets were used (the prompt answered) before the disk was full
            e["event"] == "runner_on_ok" and e["event_data"].get("task_action") == "assert"
            for e in written
        ), sorted(e["event"] for e in written)
        assert not our_temp_dirs()
        roots = [pdd, full, *new_in_temp(before, tmp_path)]
        assert_no_marker(roots)
        assert not files_containing(key_body, *roots)
    finally:
        subprocess.run(["umount", str(full)], check=True)
