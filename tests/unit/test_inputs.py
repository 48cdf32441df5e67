"""inputs.read_private_data_dir: every env/ file in YAML and JSON, and errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from containerrunner.errors import ConfigurationError
from containerrunner.inputs import (
    SETTINGS_KEYS,
    PrivateData,
    Settings,
    parse_passwords,
    parse_settings,
    read_private_data_dir,
)


def write(pdd: Path, name: str, text: str) -> Path:
    path = pdd / "env" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its mtime (ns) and size: to prove nothing was written."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mtime_ns, st.st_size)
    return out


def test_empty_and_missing_dirs(tmp_path: Path) -> None:
    data = read_private_data_dir(str(tmp_path / "nope"))
    assert data == PrivateData(path=str(tmp_path / "nope"))
    data = read_private_data_dir(str(tmp_path))
    assert data.extravars == {} and data.passwords == {} and data.envvars == {}
    assert data.settings == Settings()
    assert data.cmdline is None and data.ssh_key is None
    assert data.inventory is None and data.project_dir is None
    assert data.artifacts_dir == str(tmp_path / "artifacts")
    assert data.env_dir == str(tmp_path / "env")


def test_relative_path_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pdd").mkdir()
    assert read_private_data_dir("pdd").path == str(tmp_path / "pdd")


def test_private_data_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigurationError, match="not a directory"):
        read_private_data_dir(str(tmp_path / "f"))


@pytest.mark.parametrize(
    "text",
    [
        "greeting: hello\ncount: 3\nnested:\n  list: [1, 2]\n",
        json.dumps({"greeting": "hello", "count": 3, "nested": {"list": [1, 2]}}),
        '{\n\t"greeting": "hello",\n\t"count": 3,\n\t"nested": {"list": [1, 2]}\n}\n',  # tabs
    ],
    ids=["yaml", "json", "json-tabs"],
)
def test_extravars(tmp_path: Path, text: str) -> None:
    write(tmp_path, "extravars", text)
    data = read_private_data_dir(str(tmp_path))
    assert data.extravars == {"greeting": "hello", "count": 3, "nested": {"list": [1, 2]}}


@pytest.mark.parametrize(
    "text",
    [
        "'^SSH password:\\s*?$': secret\n'Vault': 1234\n",
        json.dumps({"^SSH password:\\s*?$": "secret", "Vault": 1234}),
    ],
    ids=["yaml", "json"],
)
def test_passwords(tmp_path: Path, text: str) -> None:
    write(tmp_path, "passwords", text)
    data = read_private_data_dir(str(tmp_path))
    assert data.passwords == {"^SSH password:\\s*?$": "secret", "Vault": "1234"}


@pytest.mark.parametrize(
    "text",
    ["FOO: bar\nNUM: 3\nFLAG: true\n", json.dumps({"FOO": "bar", "NUM": 3, "FLAG": True})],
    ids=["yaml", "json"],
)
def test_envvars(tmp_path: Path, text: str) -> None:
    write(tmp_path, "envvars", text)
    data = read_private_data_dir(str(tmp_path))
    assert data.envvars == {"FOO": "bar", "NUM": "3", "FLAG": "True"}


ALL_SETTINGS = {
    "idle_timeout": 30,
    "job_timeout": 600,
    "pexpect_timeout": 10,
    "pexpect_use_poll": True,
    "suppress_ansible_output": True,
    "suppress_output_file": True,
    "fact_cache": "facts",
    "fact_cache_type": "jsonfile",
    "process_isolation": True,
    "process_isolation_executable": "docker",
    "container_image": "network-ee",
    "container_options": ["--cap-add=NET_RAW"],
    "container_network": "host",
    "container_volume_mounts": ["/srv/data:/srv/data:ro"],
}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_settings_every_key(tmp_path: Path, fmt: str) -> None:
    import yaml

    assert set(ALL_SETTINGS) == set(SETTINGS_KEYS)
    text = json.dumps(ALL_SETTINGS) if fmt == "json" else yaml.safe_dump(ALL_SETTINGS)
    write(tmp_path, "settings", text)
    assert read_private_data_dir(str(tmp_path)).settings == Settings(
        idle_timeout=30.0,
        job_timeout=600.0,
        pexpect_timeout=10.0,
        pexpect_use_poll=True,
        suppress_ansible_output=True,
        suppress_output_file=True,
        fact_cache="facts",
        fact_cache_type="jsonfile",
        process_isolation=True,
        process_isolation_executable="docker",
        container_image="network-ee",
        container_options=("--cap-add=NET_RAW",),
        container_network="host",
        container_volume_mounts=("/srv/data:/srv/data:ro",),
    )


def test_settings_merged_over() -> None:
    base = Settings(idle_timeout=5.0, container_image="a")
    top = Settings(container_image="b")
    assert top.merged_over(base) == Settings(idle_timeout=5.0, container_image="b")


def test_cmdline_and_ssh_key_are_plain_text(tmp_path: Path) -> None:
    write(tmp_path, "cmdline", "--diff --extra-vars 'a=1 b=2'\n")
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc: def\n-----END OPENSSH PRIVATE KEY-----\n"
    write(tmp_path, "ssh_key", key)
    data = read_private_data_dir(str(tmp_path))
    assert data.cmdline == "--diff --extra-vars 'a=1 b=2'\n"
    assert data.ssh_key == key


def test_blank_files_are_empty(tmp_path: Path) -> None:
    for name in ("extravars", "passwords", "envvars", "settings", "cmdline", "ssh_key"):
        write(tmp_path, name, "\n")
    data = read_private_data_dir(str(tmp_path))
    assert data == PrivateData(path=str(tmp_path))


def test_inventory_and_project(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "project").mkdir()
    data = read_private_data_dir(str(tmp_path))
    assert data.inventory == str(tmp_path / "inventory")
    assert data.project_dir == str(tmp_path / "project")


def test_inventory_file(tmp_path: Path) -> None:
    (tmp_path / "inventory").write_text("localhost\n")
    (tmp_path / "project").write_text("not a dir")
    data = read_private_data_dir(str(tmp_path))
    assert data.inventory == str(tmp_path / "inventory")
    assert data.project_dir is None


# --- errors name the file and the line ---------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "extravars", "a: 1\nb: [unclosed\nc: 3\n")
    with pytest.raises(ConfigurationError) as info:
        read_private_data_dir(str(tmp_path))
    message = str(info.value)
    assert str(path) in message
    assert "line " in message and "invalid YAML" in message


def test_yaml_error_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "settings", "idle_timeout: 3\njob_timeout: 4\n  bad: indent\n")
    with pytest.raises(ConfigurationError, match=rf"{path}, line 3 "):
        read_private_data_dir(str(tmp_path))


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "passwords", '{\n  "a": "b",\n  "c": "d" "e": "f"\n}\n')
    with pytest.raises(ConfigurationError, match=rf"{path}, line 3 column 12: invalid JSON"):
        read_private_data_dir(str(tmp_path))


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("extravars", "- a\n- b\n", "mapping of variable: value, not a list"),
        ("extravars", "just a string\n", "not a string"),
        ("passwords", "[1, 2]", "mapping of prompt regex: answer"),
        ("envvars", "42\n", "mapping of NAME: value"),
        ("settings", "- idle_timeout\n", "mapping of setting: value"),
    ],
)
def test_wrong_top_level_type_names_file(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigurationError) as info:
        read_private_data_dir(str(tmp_path))
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_unknown_setting_names_key_and_lists_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "settings", "idle_timeout: 3\nprocess_isolation_path: /tmp\n")
    with pytest.raises(ConfigurationError) as info:
        read_private_data_dir(str(tmp_path))
    message = str(info.value)
    assert str(path) in message
    assert "'process_isolation_path'" in message
    for key in SETTINGS_KEYS:
        assert key in message


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"idle_timeout": "soon"}, "idle_timeout"),
        ({"job_timeout": -1}, "job_timeout"),
        ({"pexpect_timeout": 0}, "pexpect_timeout"),
        ({"pexpect_use_poll": False}, "pexpect_use_poll: false"),
        ({"process_isolation": "yes"}, "process_isolation"),
        ({"container_image": 3}, "container_image"),
        ({"container_options": "--net host"}, "container_options"),
        ({"container_volume_mounts": [1]}, "container_volume_mounts"),
        ({"suppress_output_file": 1}, "suppress_output_file"),
    ],
)
def test_bad_setting_values_name_the_key(settings: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"env/settings: {key}"):
        parse_settings(settings, "env/settings")


def test_container_options_string_gets_shlex_hint() -> None:
    with pytest.raises(ConfigurationError, match=r"shlex\.split"):
        parse_settings({"container_options": "--net host"}, "env/settings")


def test_bad_password_regex_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "passwords", "'Password: (': x\n")
    with pytest.raises(ConfigurationError) as info:
        read_private_data_dir(str(tmp_path))
    assert str(path) in str(info.value) and "'Password: ('" in str(info.value)


def test_password_answer_must_be_text() -> None:
    with pytest.raises(ConfigurationError, match=r"passwords\['x'\]"):
        parse_passwords({"x": ["a"]}, "passwords")
    with pytest.raises(ConfigurationError, match=r"passwords\['x'\]"):
        parse_passwords({"x": True}, "passwords")


def test_bad_envvar_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "envvars", "FOO:\n  nested: 1\n")
    with pytest.raises(ConfigurationError, match=str(path)):
        read_private_data_dir(str(tmp_path))


def test_env_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "env" / "extravars").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="is a directory"):
        read_private_data_dir(str(tmp_path))


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "env" / "extravars"
    path.parent.mkdir()
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        read_private_data_dir(str(tmp_path))


def test_reading_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "extravars", "a: 1\n")
    write(tmp_path, "passwords", "x: y\n")
    write(tmp_path, "envvars", "A: b\n")
    write(tmp_path, "settings", "idle_timeout: 3\n")
    write(tmp_path, "cmdline", "--diff")
    write(tmp_path, "ssh_key", "KEY")
    (tmp_path / "inventory").write_text("localhost\n")
    before = snapshot(tmp_path)
    read_private_data_dir(str(tmp_path))
    assert snapshot(tmp_path) == before
