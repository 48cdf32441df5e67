"""The utility helpers side by side with ansible-runner 2.4.3, on the same inputs.

Each test calls containerrunner's helper and ansible_runner's (installed in the test venv) with
the same arguments, on the host (ansible-core 2.19 of the venv) and in podman and docker (the
project's EE, ansible-core 2.19). The 2.14 tests use the 2.14 EE in both engines.

A non-zero exit of the Ansible tool is returned, not raised: `(response, stderr)`, as
ansible-runner does. Where ansible-runner itself fails (`ansible-doc -F -j` crashes in
ansible-core; 2.14's usage text on stdout is no JSON), the test says so and checks that
containerrunner works.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.conftest import image_present
from tests.integration.support import container_kwargs

pytestmark = pytest.mark.integration

COMPAT_IMAGE = "localhost/containerrunner-ee:ansible-core-2.14"
NOT_SERIALIZABLE = "not JSON serializable"


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-runner finds ansible-doc & co. on PATH only (containerrunner also looks beside
    this Python); the venv's bin/ goes first so that both run the same ansible-core."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


Helper = str
Call = tuple[Helper, tuple[Any, ...], dict[str, Any]]


def side_by_side(
    call: Call, where: dict[str, Any], tmp_path: Path
) -> tuple[tuple[Any, str], tuple[Any, str]]:
    """(containerrunner's (response, error), ansible-runner's) for one helper call."""
    name, args, kwargs = call
    ours = getattr(containerrunner, name)(*args, host_cwd=str(tmp_path), **kwargs, **where)
    pdd = tmp_path / f"ansible-runner-{name}"
    pdd.mkdir(exist_ok=True)
    theirs = getattr(ansible_runner, name)(
        *args, host_cwd=str(tmp_path), private_data_dir=str(pdd), quiet=True, **kwargs, **where
    )
    return ours, theirs


def _bad_config(tmp_path: Path) -> Call:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[defaults\nforks =\n")
    return "get_ansible_config", ("dump",), {"config_file": str(cfg)}


def _broken_role_spec(tmp_path: Path) -> Call:
    role = tmp_path / "pbdir" / "roles" / "broken"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("argument_specs: [unclosed\n")
    (role / "tasks").mkdir()
    (role / "tasks" / "main.yml").write_text("- debug: {msg: hi}\n")
    return "get_role_argspec", ("broken",), {"playbook_dir": str(tmp_path / "pbdir")}


# Each makes a call whose Ansible tool exits non-zero with nothing on stdout (ansible-core
# 2.19), and names a piece of the tool's message.
NONZERO_EXITS: dict[str, tuple[Callable[[Path], Call], str]] = {
    "plugin_docs_bad_type": (
        lambda _: (
            "get_plugin_docs",
            (["ansible.builtin.ping"],),
            {"plugin_type": "nosuchtype", "response_format": "json"},
        ),
        "invalid choice: 'nosuchtype'",
    ),
    "plugin_list_bad_type": (
        lambda _: ("get_plugin_list", (), {"plugin_type": "nosuchtype", "response_format": "json"}),
        "invalid choice: 'nosuchtype'",
    ),
    "inventory_missing_file": (
        lambda tmp: (
            "get_inventory",
            ("list", [str(tmp / "no-such-inventory")]),
            {"envvars": {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}},
        ),
        "No inventory was parsed",
    ),
    "inventory_unknown_host": (
        lambda _: (
            "get_inventory",
            ("host", ["localhost,"]),
            {"host": "nohost", "response_format": "json"},
        ),
        "single valid host",
    ),
    "config_bad_file": (_bad_config, "Error reading config file"),
    "role_list_bad_collection": (
        lambda _: ("get_role_list", (), {"collection": "no_dots"}),
        "Invalid collection name",
    ),
    "role_argspec_broken_spec": (_broken_role_spec, "argument_specs.yml"),
}


@pytest.mark.parametrize("case", sorted(NONZERO_EXITS))
def test_nonzero_exit_is_returned_like_ansible_runner(
    case: str, where: dict[str, Any], tmp_path: Path
) -> None:
    make_call, message = NONZERO_EXITS[case]
    (ours, our_err), (theirs, their_err) = side_by_side(make_call(tmp_path), where, tmp_path)
    assert ours == theirs == ""
    assert message in our_err
    assert message in their_err


def test_inventory_response_formats_like_ansible_runner(
    where: dict[str, Any], tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("[web]\nweb1 colour=blue\n")
    text_call: Call = ("get_inventory", ("list", [str(hosts)]), {})
    (text, _), (their_text, _) = side_by_side(text_call, where, tmp_path)
    # No response_format: the text ansible-inventory printed (JSON text), not a dict.
    assert isinstance(text, str)
    assert json.loads(text) == json.loads(their_text)
    assert json.loads(text)["web"]["hosts"] == ["web1"]

    json_call: Call = ("get_inventory", ("list", [str(hosts)]), {"response_format": "json"})
    (data, _), (their_data, _) = side_by_side(json_call, where, tmp_path)
    assert data == their_data
    assert data["_meta"]["hostvars"]["web1"] == {"colour": "blue"}

    yaml_call: Call = (
        "get_inventory",
        ("host", [str(hosts)]),
        {"host": "web1", "response_format": "yaml"},
    )
    (yaml_text, _), (their_yaml, _) = side_by_side(yaml_call, where, tmp_path)
    assert yaml_text == their_yaml == "colour: blue\n"


def _lookup_files(files: Any, listed: Any) -> None:
    """`files` is the {plugin: path} mapping of the same lookups `-l -j` lists."""
    assert isinstance(files, dict)
    assert set(files) == set(listed)
    assert files["ansible.builtin.env"].endswith("/ansible/plugins/lookup/env.py")


def test_plugin_list_files_json_is_a_mapping(where: dict[str, Any], tmp_path: Path) -> None:
    call: Call = (
        "get_plugin_list",
        (),
        {"list_files": True, "response_format": "json", "plugin_type": "lookup"},
    )
    (files, err), (theirs, their_err) = side_by_side(call, where, tmp_path)
    # ansible-runner itself fails here: `ansible-doc -F -j` crashes (the paths are bytes), so it
    # returns an empty response and the crash message. containerrunner reads the text listing.
    assert (theirs, NOT_SERIALIZABLE in their_err) == ("", True)
    assert NOT_SERIALIZABLE not in err
    listed, _ = containerrunner.get_plugin_list(
        response_format="json", plugin_type="lookup", host_cwd=str(tmp_path), **where
    )
    _lookup_files(files, listed)
    if not where["process_isolation"]:
        assert Path(files["ansible.builtin.env"]).is_file()


def test_own_errors_still_raise(tmp_path: Path) -> None:
    with pytest.raises(containerrunner.ConfigurationError, match="action"):
        containerrunner.get_inventory("nosuchaction", ["localhost,"])
    with pytest.raises(containerrunner.ConfigurationError, match="contianer_image"):
        containerrunner.get_role_list(contianer_image="x")


def test_missing_image_still_raises(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(containerrunner.ImageNotFoundError, match="scripts/build-images"):
        containerrunner.get_plugin_list(
            host_cwd=str(tmp_path), pull="never",
            **container_kwargs(engine, "localhost/no-such-image:1"),
        )  # fmt: skip


# ---------------------------------------------------------------------- ansible-core 2.14
@pytest.fixture
def compat(engine: Engine) -> dict[str, Any]:
    if not image_present(engine, COMPAT_IMAGE):
        pytest.fail(f"{COMPAT_IMAGE} missing in {engine.name}: run scripts/build-images")
    return container_kwargs(engine, COMPAT_IMAGE)


def test_plugin_list_files_json_on_2_14(compat: dict[str, Any], tmp_path: Path) -> None:
    call: Call = (
        "get_plugin_list",
        (),
        {"list_files": True, "response_format": "json", "plugin_type": "lookup"},
    )
    (files, _), (theirs, their_err) = side_by_side(call, compat, tmp_path)
    # ansible-runner fails on 2.14 too ("Object of type bytes is not JSON serializable").
    assert (theirs, NOT_SERIALIZABLE in their_err) == ("", True)
    listed, _ = containerrunner.get_plugin_list(
        response_format="json", plugin_type="lookup", host_cwd=str(tmp_path), **compat
    )
    _lookup_files(files, listed)
    modules, _ = containerrunner.get_plugin_list(
        list_files=True, response_format="json", host_cwd=str(tmp_path), **compat
    )
    # 2.14 lists the deprecated `_include` module in a DEPRECATED section, without the `_`.
    assert modules["ansible.builtin.include"].endswith("/ansible/modules/_include.py")


def test_nonzero_exit_with_usage_on_stdout_on_2_14(compat: dict[str, Any], tmp_path: Path) -> None:
    """ansible-core 2.14 prints its usage to stdout on an option error (rc 5)."""
    call: Call = (
        "get_inventory",
        ("host", ["localhost,"]),
        {"host": "nohost", "response_format": "json"},
    )
    # ansible-runner fails here: it parses the usage text as JSON. containerrunner returns it.
    with pytest.raises(json.JSONDecodeError):
        side_by_side(call, compat, tmp_path)
    out, err = containerrunner.get_inventory(
        "host", ["localhost,"], host="nohost", response_format="json",
        host_cwd=str(tmp_path), **compat,
    )  # fmt: skip
    assert out.startswith("usage: ansible-inventory")
    assert "single valid host" in err
    # Without JSON both hand back the same usage text and message.
    config_call = _bad_config(tmp_path)
    (ours, our_err), (theirs, their_err) = side_by_side(config_call, compat, tmp_path)
    assert ours == theirs
    assert ours.startswith("usage: ansible-config")
    assert "Error reading config file" in our_err and "Error reading config file" in their_err
