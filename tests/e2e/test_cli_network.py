"""examples/network/run, the command examples/network/README.md gives: simulated devices, then
`containerrunner run ... --show-output` of the example's playbook in network-ee, on podman and
docker; the collected files hold every device's output, and the devices are gone afterwards."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from containerrunner.isolation.engine import Engine
from tests.conftest import image_present
from tests.integration.support import assert_secret_nowhere
from tests.netsim import ENABLE_SECRET, PASSWORD

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "examples" / "network" / "run"
NETWORK_EE = "localhost/network-ee:latest"
PORTS = (21022, 21023, 21024)  # examples/network/inventory/hosts


def answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_network_example_runs_green(
    engine: Engine, tmp_path: Path, no_leftover_containers: Engine
) -> None:
    if not image_present(engine, NETWORK_EE):
        pytest.fail(f"{NETWORK_EE} missing in {engine.name}: run scripts/build-images")
    env = {
        **os.environ,
        "CR_VENV": str(Path(sys.executable).parent.parent),
        "TMPDIR": str(tmp_path),  # the run script's copy of the example goes here
    }
    env.pop("COLUMNS", None)
    proc = subprocess.run(
        [str(RUN), "--engine", engine.name],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "simulated devices listening: ios1 (cisco_ios)" in text
    # --show-output: each device's output under its result line, per command
    assert "    [show version]" in text and "    Cisco IOS Software" in text, text
    assert "    Software image version: 4.30.1F" in text and "    Junos: 21.4R1.12" in text
    for host in ("ios1", "eos1", "junos1"):
        assert re.search(rf"^{host} : ok=\d+ changed=\d+ unreachable=0 failed=0", text, re.M)
    found = re.search(r"collected into (\S+): eos1.txt ios1.txt junos1.txt", text)
    assert found, text
    collected = Path(found.group(1))
    assert collected.is_relative_to(tmp_path)
    assert "Current configuration" in (collected / "ios1.txt").read_text()  # after `enable`
    assert "Arista vEOS-lab" in (collected / "eos1.txt").read_text()
    assert "ge-0/0/0.0" in (collected / "junos1.txt").read_text()
    work = collected.parent.parent
    for secret in (PASSWORD, ENABLE_SECRET, "containerrunner-example"):
        assert_secret_nowhere(secret, work / "artifacts", work / "project")
    assert not any(answers(port) for port in PORTS), "simulated devices left running"
