"""How the utility helpers read the output of the Ansible tools (containerrunner.responses)."""

from __future__ import annotations

import pytest

from containerrunner.commands import lists_files_as_text, plugin_list_argv
from containerrunner.errors import OutputParseError
from containerrunner.responses import (
    parse_json,
    parse_plugin_files,
    parse_response,
    utility_response,
)

# Real output, cut to a few lines, of `ansible-doc -t module -F` in
# localhost/containerrunner-ee:ansible-core-2.14 (ansible-core 2.14.18): first lines, then the
# end with its DEPRECATED section (the name without the file's leading underscore).
ANSIBLE_DOC_F_2_14 = (
    "ansible.builtin.add_host               "
    "/opt/ansible/lib/python3.11/site-packages/ansible/modules/add_host.py\n"
    "ansible.builtin.apt                    "
    "/opt/ansible/lib/python3.11/site-packages/ansible/modules/apt.py\n"
    "ansible.builtin.yum_repository         "
    "/opt/ansible/lib/python3.11/site-packages/ansible/modules/yum_repository.py\n"
    "\n"
    "DEPRECATED:\n"
    "ansible.builtin.include                "
    "/opt/ansible/lib/python3.11/site-packages/ansible/modules/_include.py\n"
)

# Real output, cut to its first lines, of `ansible-doc -t filter -F` in
# localhost/containerrunner-ee:latest (ansible-core 2.19.14): the Jinja2 builtin filters have no
# file (`None`), and short paths are padded with trailing spaces.
ANSIBLE_DOC_F_2_19 = (
    "ansible.builtin.abs                  None                                  \n"
    "ansible.builtin.attr                 None                                  \n"
    "ansible.builtin.b64decode            "
    "/opt/ansible/lib/python3.11/site-packages/ansible/plugins/filter/core.py\n"
)

# What ansible-core 2.14 prints to stdout (rc 5) for `ansible-inventory --host nohost -i
# localhost,`: its usage, first lines (2.19 prints nothing to stdout).
USAGE_2_14 = (
    "usage: ansible-inventory [-h] [--version] [-v] [-i INVENTORY]\n"
    "                         [--vault-id VAULT_IDS]\n"
    "                         [--ask-vault-password | --vault-password-file VAULT_PASSWORD_FILES]\n"
)
HOST_ERROR_2_19 = (
    "[WARNING]: Could not match supplied host pattern, ignoring: nohost\n"
    "[ERROR]: You must pass a single valid host to --host parameter\n"
)
MODULES = "/opt/ansible/lib/python3.11/site-packages/ansible/modules"


def test_plugin_files_2_14_with_deprecated_section() -> None:
    assert parse_plugin_files(ANSIBLE_DOC_F_2_14) == {
        "ansible.builtin.add_host": f"{MODULES}/add_host.py",
        "ansible.builtin.apt": f"{MODULES}/apt.py",
        "ansible.builtin.yum_repository": f"{MODULES}/yum_repository.py",
        "ansible.builtin.include": f"{MODULES}/_include.py",
    }


def test_plugin_files_2_19_padding_and_no_file() -> None:
    assert parse_plugin_files(ANSIBLE_DOC_F_2_19) == {
        "ansible.builtin.abs": None,
        "ansible.builtin.attr": None,
        "ansible.builtin.b64decode": (
            "/opt/ansible/lib/python3.11/site-packages/ansible/plugins/filter/core.py"
        ),
    }


def test_plugin_files_path_with_spaces_and_warning_lines() -> None:
    out = (
        "[WARNING]: Collection x.y does not support Ansible version 2.19.1\n"
        "x.y.mod   /home/me/my collections/x/y/plugins/modules/mod.py   \n"
    )
    assert parse_plugin_files(out) == {
        "x.y.mod": "/home/me/my collections/x/y/plugins/modules/mod.py"
    }


def test_plugin_files_empty_listing() -> None:
    assert parse_plugin_files("") == {}


@pytest.mark.parametrize("line", ["ansible.builtin.ping", '{"ansible.builtin.ping": "x"}'])
def test_plugin_files_refuses_what_is_no_listing(line: str) -> None:
    with pytest.raises(OutputParseError, match="ansible-doc -F") as info:
        parse_plugin_files(ANSIBLE_DOC_F_2_19 + line + "\n")
    assert info.value.raw.endswith(line + "\n")


def test_parse_response_text_formats_are_text() -> None:
    for fmt in (None, "human", "yaml", "toml"):
        assert parse_response('{"a": 1}\n', fmt) == '{"a": 1}\n'


def test_parse_response_json_and_leading_noise() -> None:
    assert parse_response('{"a": [1]}\n', "json") == {"a": [1]}
    # ansible-runner's sanitize_json_response: text before the first `{` is dropped.
    assert parse_response('[WARNING]: something\n{"a": 1}\n', "json") == {"a": 1}


@pytest.mark.parametrize("out", ["", "\n"])
def test_parse_response_empty_json_stays_text(out: str) -> None:
    """ansible-runner parses only a non-empty response; '' comes back as ''."""
    assert parse_response(out, "json") == out


def test_parse_response_bad_json_raises_with_raw() -> None:
    with pytest.raises(OutputParseError, match="not valid JSON") as info:
        parse_response("@all:\n  |--@ungrouped:\n", "json")
    assert info.value.raw.startswith("@all:")
    with pytest.raises(OutputParseError):
        parse_json('{"a": 1} trailing')


def test_utility_response_success() -> None:
    assert utility_response('{"a": 1}', "warn\n", 0, "json") == ({"a": 1}, "warn\n")
    assert utility_response("text\n", "", 0, None) == ("text\n", "")
    files, err = utility_response(ANSIBLE_DOC_F_2_14, "", 0, "json", plugin_files=True)
    assert files["ansible.builtin.include"] == f"{MODULES}/_include.py"
    assert err == ""


@pytest.mark.parametrize("plugin_files", [False, True])
@pytest.mark.parametrize("fmt", [None, "json"])
def test_utility_response_failure_returns_empty_response_and_message(
    fmt: str | None, plugin_files: bool
) -> None:
    """A non-zero exit with nothing on stdout (ansible-core 2.19): ('', stderr), no exception."""
    assert utility_response("", HOST_ERROR_2_19, 5, fmt, plugin_files=plugin_files) == (
        "",
        HOST_ERROR_2_19,
    )


def test_utility_response_failure_with_usage_on_stdout_returns_the_text() -> None:
    """ansible-core 2.14 prints its usage to stdout on an option error (rc 5): not JSON, so the
    text is the response (ansible-runner raises json.JSONDecodeError there)."""
    err = "ERROR! You must pass a single valid host to --host parameter\n"
    assert utility_response(USAGE_2_14, err, 5, "json") == (USAGE_2_14, err)
    assert utility_response(USAGE_2_14, err, 5, "json", plugin_files=True) == (USAGE_2_14, err)


def test_utility_response_failure_with_json_on_stdout_is_parsed() -> None:
    """As in ansible-runner, the return code does not change how stdout is read."""
    assert utility_response('{"x": {"error": "bad"}}', "", 1, "json") == (
        {"x": {"error": "bad"}},
        "",
    )


def test_utility_response_success_with_bad_json_raises() -> None:
    with pytest.raises(OutputParseError):
        utility_response("not json", "", 0, "json")


@pytest.mark.parametrize(
    ("list_files", "fmt", "plugin_type", "as_text", "argv_tail"),
    [
        (True, "json", None, True, ["-F"]),
        (True, "json", "lookup", True, ["-F", "-t", "lookup"]),
        (True, "json", "role", False, ["-F", "-j", "-t", "role"]),
        (True, "json", "keyword", False, ["-F", "-j", "-t", "keyword"]),
        (True, None, None, False, ["-F"]),
        (True, "human", "module", False, ["-F", "-t", "module"]),
        (False, "json", None, False, ["-l", "-j"]),
    ],
)
def test_file_listing_is_read_as_text_without_j(
    list_files: bool, fmt: str | None, plugin_type: str | None, as_text: bool, argv_tail: list[str]
) -> None:
    assert lists_files_as_text(list_files, fmt, plugin_type) is as_text
    assert plugin_list_argv(list_files, fmt, plugin_type) == ["ansible-doc", *argv_tail]
