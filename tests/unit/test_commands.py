"""commands: golden argv for every builder and flag; invalid values name the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from containerrunner import commands
from containerrunner.commands import (
    adhoc_argv,
    config_argv,
    inventory_argv,
    playbook_argv,
    plugin_docs_argv,
    plugin_list_argv,
    role_argspec_argv,
    role_list_argv,
    split_cmdline,
)
from containerrunner.errors import ConfigurationError

# --- ansible-playbook ---------------------------------------------------------------------


def test_playbook_minimal() -> None:
    assert playbook_argv("/p/site.yml") == ["ansible-playbook", "/p/site.yml"]


def test_playbook_every_flag() -> None:
    argv = playbook_argv(
        "/p/site.yml",
        inventories=["/pdd/inventory", "/other/hosts"],
        extravars_file="/tmp/x/extravars.json",
        limit="web:&prod",
        tags="a,b",
        skip_tags="c",
        forks=10,
        verbosity=3,
        cmdline="--diff --extra-vars 'x=1 y=2'",
    )
    assert argv == [
        "ansible-playbook",
        "--diff",
        "--extra-vars",
        "x=1 y=2",
        "-i",
        "/pdd/inventory",
        "-i",
        "/other/hosts",
        "--limit",
        "web:&prod",
        "-e",
        "@/tmp/x/extravars.json",
        "-vvv",
        "--tags",
        "a,b",
        "--skip-tags",
        "c",
        "--forks",
        "10",
        "/p/site.yml",
    ]


def test_playbook_binary_override_and_cmdline_list() -> None:
    argv = playbook_argv("site.yml", binary="/opt/bin/ansible-playbook", cmdline=["--check"])
    assert argv == ["/opt/bin/ansible-playbook", "--check", "site.yml"]


def test_playbook_forks_zero_is_default() -> None:
    assert playbook_argv("s.yml", forks=0) == ["ansible-playbook", "s.yml"]


@pytest.mark.parametrize("verbosity", [1, 5])
def test_verbosity_one_flag(verbosity: int) -> None:
    assert playbook_argv("s.yml", verbosity=verbosity)[1] == "-" + "v" * verbosity


def test_extravars_never_inline() -> None:
    argv = playbook_argv("s.yml", extravars_file="/x/ev")
    assert argv[1:3] == ["-e", "@/x/ev"]
    assert not any(arg.startswith("{") for arg in argv)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"verbosity": 6}, "verbosity"),
        ({"verbosity": -1}, "verbosity"),
        ({"verbosity": True}, "verbosity"),
        ({"forks": -1}, "forks"),
        ({"forks": "5"}, "forks"),
        ({"limit": 3}, "limit"),
        ({"tags": ["a"]}, "tags"),
        ({"inventories": "/inv"}, "inventories"),
        ({"cmdline": "--diff 'unbalanced"}, "cmdline"),
        ({"cmdline": [1]}, "cmdline"),
        ({"binary": ""}, "binary"),
        ({"extravars_file": ""}, "extravars_file"),
    ],
)
def test_playbook_bad_values(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        playbook_argv("s.yml", **kwargs)


def test_playbook_empty() -> None:
    with pytest.raises(ConfigurationError, match="playbook"):
        playbook_argv("")


# --- ansible (ad-hoc) ---------------------------------------------------------------------


def test_adhoc_minimal() -> None:
    assert adhoc_argv("ping", "all") == ["ansible", "-m", "ping", "all"]


def test_adhoc_every_flag() -> None:
    argv = adhoc_argv(
        "shell",
        "web*",
        module_args="echo 'hi there'",
        inventories=["/pdd/inventory"],
        extravars_file="/tmp/ev",
        limit="web1",
        forks=2,
        verbosity=1,
        cmdline="--become",
        binary="/usr/local/bin/ansible",
    )
    assert argv == [
        "/usr/local/bin/ansible",
        "--become",
        "-i",
        "/pdd/inventory",
        "--limit",
        "web1",
        "-e",
        "@/tmp/ev",
        "-v",
        "--forks",
        "2",
        "-m",
        "shell",
        "-a",
        "echo 'hi there'",
        "web*",
    ]


def test_adhoc_empty_module_args_kept() -> None:
    assert adhoc_argv("ping", "all", module_args="") == ["ansible", "-m", "ping", "-a", "", "all"]


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("", "all"), {}, "module"),
        (("ping", ""), {}, "host_pattern"),
        (("ping", "all"), {"module_args": {"a": 1}}, "module_args"),
    ],
)
def test_adhoc_bad_values(args: tuple[str, str], kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        adhoc_argv(*args, **kwargs)


# --- ansible-doc --------------------------------------------------------------------------


def test_plugin_docs_minimal() -> None:
    assert plugin_docs_argv(["ping"]) == ["ansible-doc", "ping"]


def test_plugin_docs_every_flag() -> None:
    argv = plugin_docs_argv(
        ["vyos.vyos.vyos_command", "ansible.builtin.ping"],
        plugin_type="module",
        response_format="json",
        snippet=True,
        playbook_dir="/play",
        module_path="/mods",
    )
    assert argv == [
        "ansible-doc",
        "-j",
        "-s",
        "-t",
        "module",
        "--playbook-dir",
        "/play",
        "-M",
        "/mods",
        "vyos.vyos.vyos_command",
        "ansible.builtin.ping",
    ]


def test_plugin_docs_human_format_has_no_flag() -> None:
    assert plugin_docs_argv(("ping",), response_format="human") == ["ansible-doc", "ping"]


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("ping",), {}, "plugin_names"),
        (([],), {}, "plugin_names"),
        (([1],), {}, "plugin_names"),
        ((["ping"],), {"response_format": "yaml"}, "response_format"),
        ((["ping"],), {"plugin_type": ""}, "plugin_type"),
        ((["ping"],), {"module_path": ["/m"]}, "module_path"),
    ],
)
def test_plugin_docs_bad_values(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        plugin_docs_argv(*args, **kwargs)


def test_plugin_names_string_hint() -> None:
    with pytest.raises(ConfigurationError, match=r"plugin_names=\['ansible.builtin.ping'\]"):
        plugin_docs_argv("ping")


def test_plugin_list() -> None:
    assert plugin_list_argv() == ["ansible-doc", "-l"]
    assert plugin_list_argv(list_files=True) == ["ansible-doc", "-F"]
    assert plugin_list_argv(
        response_format="json", plugin_type="lookup", playbook_dir="/p", module_path="/m"
    ) == ["ansible-doc", "-l", "-j", "-t", "lookup", "--playbook-dir", "/p", "-M", "/m"]


def test_plugin_list_bad_format() -> None:
    with pytest.raises(ConfigurationError, match=r"response_format.*json, human"):
        plugin_list_argv(response_format="toml")


def test_role_list() -> None:
    assert role_list_argv() == ["ansible-doc", "-t", "role", "-l", "-j"]
    assert role_list_argv("foo.bar", "/p") == [
        "ansible-doc",
        "-t",
        "role",
        "-l",
        "-j",
        "--playbook-dir",
        "/p",
        "foo.bar",
    ]


def test_role_argspec() -> None:
    assert role_argspec_argv("baz") == ["ansible-doc", "-t", "role", "-j", "baz"]
    assert role_argspec_argv("baz", collection="foo.bar", playbook_dir="/p") == [
        "ansible-doc",
        "-t",
        "role",
        "-j",
        "--playbook-dir",
        "/p",
        "foo.bar.baz",
    ]


def test_role_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="role"):
        role_argspec_argv("")
    with pytest.raises(ConfigurationError, match="collection"):
        role_list_argv(collection="")


# --- ansible-inventory --------------------------------------------------------------------


def test_inventory_list() -> None:
    assert inventory_argv("list", ["/a", "/b"]) == [
        "ansible-inventory",
        "--list",
        "-i",
        "/a",
        "-i",
        "/b",
    ]


def test_inventory_host_and_every_flag() -> None:
    argv = inventory_argv(
        "host",
        ["/inv"],
        response_format="yaml",
        host="web1",
        playbook_dir="/p",
        vault_ids="dev@prompt",
        vault_password_file="/secret/vpf",
        output_file="/out.yml",
        export=True,
    )
    assert argv == [
        "ansible-inventory",
        "--host",
        "web1",
        "-i",
        "/inv",
        "-y",
        "--playbook-dir",
        "/p",
        "--vault-id",
        "dev@prompt",
        "--vault-password-file",
        "/secret/vpf",
        "--output",
        "/out.yml",
        "--export",
    ]


def test_inventory_formats() -> None:
    assert inventory_argv("list", ["/i"], response_format="toml")[-1] == "--toml"
    assert inventory_argv("list", ["/i"], response_format="json") == [
        "ansible-inventory",
        "--list",
        "-i",
        "/i",
    ]
    assert inventory_argv("graph", ["/i"]) == ["ansible-inventory", "--graph", "-i", "/i"]
    assert inventory_argv("graph", ["/i"], response_format="json")[1] == "--graph"


def test_inventory_several_vault_ids() -> None:
    argv = inventory_argv("list", ["/i"], vault_ids=["a@x", "b@y"], export=False)
    assert argv[-4:] == ["--vault-id", "a@x", "--vault-id", "b@y"]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("show", ["/i"]), {}, "action must be one of graph, host, list"),
        (("list", "/i"), {}, "inventories must be a list"),
        (("list", []), {}, "inventories"),
        (("list", ["/i"]), {"response_format": "ini"}, "response_format.*json, yaml, toml"),
        (("graph", ["/i"]), {"response_format": "yaml"}, "response_format"),
        (("host", ["/i"]), {}, "host is required"),
        (("list", ["/i"]), {"host": "web1"}, "host only applies"),
        (("list", ["/i"]), {"vault_ids": [3]}, "vault_ids"),
    ],
)
def test_inventory_bad_values(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        inventory_argv(*args, **kwargs)


# --- ansible-config -----------------------------------------------------------------------


@pytest.mark.parametrize("action", ["list", "dump", "view"])
def test_config_actions(action: str) -> None:
    assert config_argv(action) == ["ansible-config", action]


def test_config_every_flag() -> None:
    assert config_argv("dump", config_file="/h/ansible.cfg", only_changed=True) == [
        "ansible-config",
        "dump",
        "-c",
        "/h/ansible.cfg",
        "--only-changed",
    ]


def test_config_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="action must be one of list, dump, view"):
        config_argv("init")
    with pytest.raises(ConfigurationError, match="only_changed"):
        config_argv("list", only_changed=True)
    with pytest.raises(ConfigurationError, match="config_file"):
        config_argv("view", config_file="")


# --- helpers ------------------------------------------------------------------------------


def test_split_cmdline() -> None:
    assert split_cmdline("-e 'a=1 b=2' --diff") == ["-e", "a=1 b=2", "--diff"]
    assert split_cmdline(("--check",)) == ["--check"]
    with pytest.raises(ConfigurationError, match="env/cmdline"):
        split_cmdline("'open", "env/cmdline")


def test_builders_are_pure() -> None:
    """Same input, same output, and no shared mutable state between calls."""
    first = commands.playbook_argv("s.yml", inventories=["/i"])
    first.append("mutated")
    assert commands.playbook_argv("s.yml", inventories=["/i"]) == [
        "ansible-playbook",
        "-i",
        "/i",
        "s.yml",
    ]
