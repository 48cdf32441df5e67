"""Network playbooks in the network-ee image against simulated devices (tests/netsim.py:
fakenos on 127.0.0.1, reached with container_network="host"), on podman and docker.

One playbook per engine covers the three platforms' command modules and cli_command, `enable`
with a vaulted secret, ios_config in check mode with a diff, a command the device rejects, a
device that refuses the login, one whose port is closed, one that never completes the SSH login
(connect timeout) and one that stops answering in the middle of a command; the tests below read
its results.
The SSH library matrix (paramiko, libssh) runs as ad-hoc `ansible` through run_command.
Credentials reach Ansible through the vault (run) or `passwords` (ad-hoc), never a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import containerrunner
from containerrunner.isolation.engine import ENGINE_NAMES, Engine
from containerrunner.results import Summary
from tests.conftest import EngineProbe, image_present, our_containers, require_engine
from tests.integration.support import assert_secret_nowhere, make_vault
from tests.netsim import ENABLE_SECRET, HANG_TIMEOUT, MUTE_TIMEOUT, PASSWORD, SimulatedDevices

pytestmark = [
    pytest.mark.integration,
    # fakenos logs a refused login and a closed connection as exceptions in its server threads
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

NETWORK_EE = "localhost/network-ee:latest"
VAULT_PASSWORD = "Vault-Net-Pw-4e7b"
PLATFORM_DEVICES = ("ios1", "eos1", "junos1")

PLAYBOOK = """\
- name: Show commands on every platform
  hosts: ios1:eos1:junos1
  gather_facts: false
  tasks:
    - name: ios show
      cisco.ios.ios_command:
        commands: [show version, show ip bgp]
      when: ansible_network_os == 'cisco.ios.ios'
    - name: eos show
      arista.eos.eos_command:
        commands: [show version, show hostname | json]
      when: ansible_network_os == 'arista.eos.eos'
    - name: junos show
      junipernetworks.junos.junos_command:
        commands: [show version, show interfaces terse]
      when: ansible_network_os == 'junipernetworks.junos.junos'
    - name: cli show version
      ansible.netcommon.cli_command:
        command: show version

- name: Privileged
  hosts: ios1:eos1
  gather_facts: false
  become: true
  become_method: ansible.netcommon.enable
  tasks:
    - name: privilege
      ansible.netcommon.cli_command:
        command: show privilege
    - name: ntp in check mode
      cisco.ios.ios_config:
        lines: [ntp server 192.0.2.124]
        diff_against: intended
        intended_config: "{{ lookup('file', 'intended.cfg') }}"
      check_mode: true
      diff: true
      when: ansible_network_os == 'cisco.ios.ios'
    # last task of ios1 (a play whose every host fails would end the playbook)
    - name: invalid show
      cisco.ios.ios_command:
        commands: [show vlan]
      when: inventory_hostname == 'ios1'

# last: every host of this play fails, which ends the playbook
- name: Misbehaving devices
  hosts: refuser:hanger:mute:down
  gather_facts: false
  tasks:
    - name: tech support
      cisco.ios.ios_command:
        commands: [show tech-support]
"""

INTENDED = """\
version 15.9
hostname ios1
!
interface GigabitEthernet0/0
 description uplink
 ip address 192.0.2.1 255.255.255.0
!
ntp server 192.0.2.123
ntp server 192.0.2.124
!
end
"""


def network_pdd(
    root: Path,
    devices: SimulatedDevices,
    names: list[str] | None = None,
    playbook: str = PLAYBOOK,
    network: str = "host",
) -> Path:
    """A private data dir: the devices' inventory, vaulted credentials in group_vars, the
    playbook (project/site.yml), and env/settings choosing the container's network."""
    (root / "project").mkdir(parents=True)
    (root / "inventory" / "group_vars").mkdir(parents=True)
    (root / "env").mkdir()
    (root / "inventory" / "hosts").write_text(devices.inventory(names))
    password = make_vault(PASSWORD, VAULT_PASSWORD, root)
    secret = make_vault(ENABLE_SECRET, VAULT_PASSWORD, root)
    (root / "inventory" / "group_vars" / "all.yml").write_text(
        f"ansible_password: {password}\nansible_become_password: {secret}\n"
    )
    (root / "project" / "site.yml").write_text(playbook)
    (root / "project" / "intended.cfg").write_text(INTENDED)
    (root / "env" / "settings").write_text(f"container_network: {network!r}\n")
    return root


@dataclass
class NetworkRun:
    engine: Engine
    runner: containerrunner.Runner
    summary: Summary
    pdd: Path
    left: list[str]  # containers of this process left after the run


@pytest.fixture(scope="module", params=ENGINE_NAMES)
def network_run(
    request: pytest.FixtureRequest,
    engine_probes: dict[str, EngineProbe],
    devices: SimulatedDevices,
    tmp_path_factory: pytest.TempPathFactory,
) -> NetworkRun:
    """The playbook above, run once per engine in network-ee."""
    engine = require_engine(request, engine_probes, request.param, NETWORK_EE)
    pdd = network_pdd(tmp_path_factory.mktemp(f"net-{engine.name}"), devices)
    before = set(our_containers(engine, os.getpid()))
    runner = containerrunner.run(
        private_data_dir=str(pdd), playbook="site.yml", cmdline="--ask-vault-pass",
        passwords={r"Vault password.*:": VAULT_PASSWORD}, quiet=True,
        process_isolation=True, process_isolation_executable=engine.name,
        container_image=NETWORK_EE, timeout=300,  # a hang fails the tests (status timeout)
    )  # fmt: skip
    left = sorted(set(our_containers(engine, os.getpid())) - before)
    return NetworkRun(engine, runner, runner.task_results(), pdd, left)


def test_every_platform_answers_its_command_module(network_run: NetworkRun) -> None:
    summary = network_run.summary
    assert network_run.runner.status == "failed", network_run.runner.stdout.read()
    assert sorted(summary.task("ios show").ok) == ["ios1"]
    ios = summary.task("ios show").ok["ios1"]["stdout"]
    assert ios[0].startswith("Cisco IOS Software") and "Version 15.9(3)M4" in ios[0]
    assert "10.1.0.0/16" in ios[1]  # fakenos's own `show ip bgp` table
    eos = summary.task("eos show").ok["eos1"]["stdout"]
    assert "Software image version: 4.30.1F" in eos[0]
    assert eos[1] == {"hostname": "eos1", "fqdn": "eos1.lab"}  # `| json` output is parsed
    junos = summary.task("junos show").ok["junos1"]["stdout"]
    assert "Junos: 21.4R1.12" in junos[0] and "ge-0/0/0.0" in junos[1]
    cli = summary.task("cli show version").ok
    assert sorted(cli) == sorted(PLATFORM_DEVICES)
    assert "Hostname: junos1" in cli["junos1"]["stdout"]
    for host in PLATFORM_DEVICES:
        expected = ["invalid show"] if host == "ios1" else []  # the last play's rejected command
        assert summary.hosts[host].failed_tasks == expected, host


def test_enable_with_the_vaulted_secret(network_run: NetworkRun) -> None:
    privilege = network_run.summary.task("privilege").ok
    assert {h: r["stdout"] for h, r in privilege.items()} == {
        "ios1": "Current privilege level is 15",
        "eos1": "Current privilege level is 15",
    }


def test_ios_config_in_check_mode_reports_a_diff(network_run: NetworkRun) -> None:
    res = network_run.summary.task("ntp in check mode").changed["ios1"]
    assert res["updates"] == ["ntp server 192.0.2.124"]
    before, after = res["diff"]["before"], res["diff"]["after"]
    assert "ntp server 192.0.2.124" in after and "ntp server 192.0.2.124" not in before


def test_refused_login_is_a_connection_failure_in_the_summary(network_run: NetworkRun) -> None:
    """Ansible (netcommon's network_cli) reports a refused login as the task's failure, not as
    unreachable: the summary keeps that status, and classifies the failure as the connection's,
    with the SSH library's reason; summary.json says the same."""
    summary = network_run.summary
    res = summary.task("tech support").failed["refuser"]
    assert "authenticat" in res["msg"].lower(), res
    refuser = summary.hosts["refuser"]
    assert refuser.state == "failed" and refuser.failed_tasks == ["tech support"]
    assert refuser.failure is not None
    assert (refuser.failure.kind, refuser.failure.cause) == ("connection", "authentication")
    assert refuser.failure.reason == res["msg"]
    assert summary.task("tech support").failures["refuser"] == refuser.failure
    stats = network_run.runner.stats
    assert stats is not None and stats["failures"].get("refuser") == 1 and not stats["dark"]
    written = json.loads((Path(network_run.runner.artifact_dir) / "summary.json").read_text())
    assert written["hosts"]["refuser"]["failure"] == {
        "kind": "connection", "cause": "authentication", "reason": res["msg"],
    }  # fmt: skip


def test_closed_port_is_a_refused_connection_not_unreachable(network_run: NetworkRun) -> None:
    """A device with nothing listening (switched off) is, for Ansible's network_cli, a failed
    task too: never `unreachable` (stats `dark` stays empty). The summary classifies it
    `connection` / `refused` with libssh's reason."""
    task = network_run.summary.task("tech support")
    res = task.failed["down"]
    assert res["msg"] == "ssh connection failed: ssh connect failed: Connection refused", res
    assert "down" not in task.unreachable
    failure = network_run.summary.hosts["down"].failure
    assert failure == task.failures["down"]
    assert failure is not None and (failure.kind, failure.cause) == ("connection", "refused")
    assert failure.reason == res["msg"]
    stats = network_run.runner.stats
    assert stats is not None and stats["failures"].get("down") == 1 and not stats["dark"]


def test_rejected_command_stays_a_task_failure(network_run: NetworkRun) -> None:
    res = network_run.summary.task("invalid show").failed["ios1"]
    assert "% Invalid input detected" in res["msg"]
    failure = network_run.summary.hosts["ios1"].failure
    assert failure is not None and (failure.kind, failure.cause) == ("task", None)


def test_device_that_never_completes_the_login_hits_the_connect_timeout(
    network_run: NetworkRun,
) -> None:
    """mute accepts TCP and never sends the SSH banner: libssh (the EE's default) gives up
    after the command timeout (MUTE_TIMEOUT) with a connect timeout, classified as such."""
    task = network_run.summary.task("tech support")
    failure = task.failures["mute"]
    assert (failure.kind, failure.cause) == ("connection", "timeout"), failure
    assert "Timeout connecting to 127.0.0.1" in task.failed["mute"]["msg"]
    # within bounds, not the defaults' 30 s: no later than `down` (refused at once, so its
    # duration is the load's overhead, alike for every host of the task) plus the timeout
    assert task.duration["mute"] < task.duration["down"] + MUTE_TIMEOUT + 20, task.duration


def test_device_that_stops_answering_hits_the_command_timeout(
    network_run: NetworkRun, devices: SimulatedDevices
) -> None:
    assert devices.hung.is_set()  # hanger got the command and never answered
    res = network_run.summary.task("tech support").failed["hanger"]
    assert f"command timeout triggered, timeout value is {HANG_TIMEOUT} secs" in res["msg"]
    assert network_run.summary.task("tech support").failures["hanger"].kind == "task"
    assert network_run.runner.status == "failed"  # the job ended by itself, not by our timeout
    assert network_run.runner.rc == 2


def test_credentials_nowhere_and_no_container_left(network_run: NetworkRun) -> None:
    assert network_run.left == []
    for secret in (PASSWORD, ENABLE_SECRET, VAULT_PASSWORD):
        assert_secret_nowhere(secret, network_run.pdd)


def require_engine_image(engine: Engine) -> None:
    if not image_present(engine, NETWORK_EE):
        pytest.fail(f"{NETWORK_EE} missing in {engine.name}: run scripts/build-images")


@pytest.mark.parametrize("ssh_type", ["paramiko", "libssh"])
def test_ad_hoc_cli_command_with_each_ssh_library(
    engine: Engine,
    ssh_type: str,
    devices: SimulatedDevices,
    tmp_path: Path,
    no_leftover_containers: Engine,
) -> None:
    require_engine_image(engine)
    (tmp_path / "hosts").write_text(devices.inventory([*PLATFORM_DEVICES, "refuser"]))
    out, err, rc = containerrunner.run_command(
        "ansible",
        ["all", "-i", "hosts", "-m", "ansible.netcommon.cli_command",
         "-a", "command='show version'", "--ask-pass"],
        passwords={r"SSH password:": PASSWORD},
        envvars={"ANSIBLE_NETWORK_CLI_SSH_TYPE": ssh_type},
        host_cwd=str(tmp_path), process_isolation=True,
        process_isolation_executable=engine.name, container_image=NETWORK_EE,
        container_network="host", timeout=600,
    )  # fmt: skip
    text = out + err
    assert rc == 2, text  # refuser failed
    for host, needle in (("ios1", "Cisco IOS Software"), ("eos1", "Arista vEOS-lab"),
                         ("junos1", "Junos: 21.4R1.12")):  # fmt: skip
        assert f"{host} | SUCCESS" in text and needle in text, (host, text)
    assert "refuser | FAILED" in text
    # the login failure is told in the words of the SSH library that was used
    reason = "Authentication failed." if ssh_type == "paramiko" else "Failed to authenticate"
    assert reason in text, text
    assert_secret_nowhere(PASSWORD, tmp_path)
