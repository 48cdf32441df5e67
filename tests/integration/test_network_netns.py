"""Devices behind a network namespace, reached from network-ee on podman and docker.

Each test makes a namespace `cr-net16-<pid>` (tests/netns.py) with a veth pair on
10.231.17.0/24 (host end .1, namespace end .2), serves simulated Cisco IOS, Arista EOS and
Juniper Junos devices inside it on 10.231.17.2 (`python -m tests.netsim` under `ip netns exec`,
tests/netsim.py's ServedDevices), and runs a network playbook against 10.231.17.2:

- podman with `container_network="ns:/run/netns/NAME"`: the container joins the namespace, so
  10.231.17.2 is its own interface's address (its 127.0.0.1 is the namespace's loopback,
  where nothing listens);
- docker with `container_network="host"`: docker cannot join a namespace by path; on the
  host's network the container reaches 10.231.17.2 through the host's route over the veth.

Afterwards the devices' process has ended, and the namespace and both veth ends are gone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.conftest import image_present, our_containers
from tests.integration.support import assert_secret_nowhere
from tests.integration.test_network import NETWORK_EE, PLATFORM_DEVICES, VAULT_PASSWORD, network_pdd
from tests.netns import NetworkNamespace, available
from tests.netsim import ENABLE_SECRET, PASSWORD, PLATFORMS, Device, ServedDevices, SimulatedDevices

pytestmark = [pytest.mark.integration]

PREFIX = "10.231.17"
PORTS = {"ios1": 2201, "eos1": 2202, "junos1": 2203}  # the namespace's own ports: no clash

PLAYBOOK = """\
- name: Devices behind the namespace
  hosts: ios1:eos1:junos1
  gather_facts: false
  tasks:
    - name: cli show version
      ansible.netcommon.cli_command:
        command: show version
    - name: ios show
      cisco.ios.ios_command:
        commands: [show version]
      when: ansible_network_os == 'cisco.ios.ios'

- name: The container's own network (implicit localhost)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: interfaces
      ansible.builtin.command: cat /proc/net/dev
      changed_when: false
"""

NEEDLES = {"ios1": "Cisco IOS Software", "eos1": "Arista vEOS-lab", "junos1": "Junos: 21.4R1.12"}


def container_network(engine: Engine, ns: NetworkNamespace) -> str:
    """podman joins the namespace; docker, which cannot, uses the host's route into it."""
    return f"ns:{ns.path}" if engine.name == "podman" else "host"


def test_devices_in_a_network_namespace(
    engine: Engine, tmp_path: Path, no_leftover_containers: Engine
) -> None:
    problem = available()
    if problem is not None:
        pytest.skip(f"network namespaces unavailable: {problem}")
    if not image_present(engine, NETWORK_EE):
        pytest.fail(f"{NETWORK_EE} missing in {engine.name}: run scripts/build-images")
    ns = NetworkNamespace(f"cr-net16-{os.getpid()}", PREFIX)
    assert not ns.exists() and not ns.host_link_exists(), f"{ns.name} left by an earlier run"
    layout = SimulatedDevices(
        {name: Device(name, PLATFORMS[name], port, address=ns.address)
         for name, port in PORTS.items()}
    )  # fmt: skip
    network = container_network(engine, ns)
    pdd = network_pdd(tmp_path, layout, list(PORTS), playbook=PLAYBOOK, network=network)
    served = ServedDevices(layout, wrapper=ns.exec_args())
    with ns, served:
        before = set(our_containers(engine, os.getpid()))
        runner = containerrunner.run(
            private_data_dir=str(pdd), playbook="site.yml", cmdline="--ask-vault-pass",
            passwords={r"Vault password.*:": VAULT_PASSWORD}, quiet=True,
            process_isolation=True, process_isolation_executable=engine.name,
            container_image=NETWORK_EE, timeout=180,  # a hang fails the test (status timeout)
        )  # fmt: skip
        left = set(our_containers(engine, os.getpid())) - before
        assert served.running  # the devices outlived the run: they were not what ended it
    # gone afterwards: the devices' process, the namespace and both ends of the veth pair
    assert not served.running and not ns.exists() and not ns.host_link_exists()
    assert not left
    text = runner.stdout.read()
    assert runner.status == "successful" and runner.rc == 0, text
    summary = runner.task_results()
    cli = summary.task("cli show version").ok
    assert sorted(cli) == sorted(PLATFORM_DEVICES), text
    for host, needle in NEEDLES.items():
        assert needle in cli[host]["stdout"], (host, cli[host])
    ios = summary.task("ios show").ok["ios1"]["stdout"]
    assert ios[0].startswith("Cisco IOS Software")
    # where the container was: in the namespace (its veth end, no other) or on the host's
    # network (the host's end of the veth among the host's interfaces)
    links = summary.task("interfaces").ok["localhost"]["stdout"]
    if engine.name == "podman":
        assert ns.inner_link in links and ns.host_link not in links and "eth0" not in links
    else:
        assert ns.host_link in links and ns.inner_link not in links
    assert f"ansible_host={ns.address}" in (pdd / "inventory" / "hosts").read_text()
    for secret in (PASSWORD, ENABLE_SECRET, VAULT_PASSWORD):
        assert_secret_nowhere(secret, pdd)
