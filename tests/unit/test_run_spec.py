"""RunSpec.from_kwargs: validation, precedence of kwargs over the private data dir, role plays."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from containerrunner.config.execution import DEFAULT_IMAGE, ExecutionOptions
from containerrunner.config.run import RunSpec
from containerrunner.errors import ConfigurationError
from containerrunner.jobs import build_command_job, build_run_job


@pytest.fixture
def pdd(tmp_path: Path) -> Path:
    """A private data dir with project/site.yml, project/roles/myrole and an inventory."""
    root = tmp_path / "pdd"
    (root / "project" / "roles" / "myrole" / "tasks").mkdir(parents=True)
    (root / "project" / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    (root / "inventory").mkdir()
    (root / "inventory" / "hosts").write_text("localhost ansible_connection=local\n")
    return root


def env_file(pdd: Path, name: str, text: str) -> None:
    (pdd / "env").mkdir(exist_ok=True)
    (pdd / "env" / name).write_text(text)


def spec(pdd: Path, **kw: Any) -> RunSpec:
    kw.setdefault("playbook", "site.yml")
    return RunSpec.from_kwargs(private_data_dir=str(pdd), **kw)


# --- the basics ---------------------------------------------------------------------------


def test_defaults(pdd: Path) -> None:
    s = spec(pdd)
    assert s.kind == "playbook"
    assert s.playbook == str(pdd / "project" / "site.yml")
    assert s.private_data_dir == str(pdd)
    assert s.project_dir == str(pdd / "project")
    assert s.artifact_dir == str(pdd / "artifacts")
    assert s.job_artifact_dir == str(pdd / "artifacts" / s.ident)
    assert str(uuid.UUID(s.ident)) == s.ident
    assert s.inventory == (str(pdd / "inventory"),)
    assert s.verbosity == 0 and s.forks is None and s.cmdline == ()
    assert s.extravars == {} and s.passwords == {} and s.ssh_key is None
    assert s.execution.process_isolation is False
    assert s.execution.container_image == DEFAULT_IMAGE
    assert s.fact_cache_type == "jsonfile"
    assert s.fact_cache_dir == str(pdd / "artifacts" / s.ident / "fact_cache")
    assert s.roles_path == () and s.ansible_roles_path is None
    assert s.pexpect_timeout is None  # the Runner polls cancel_callback every 0.2 s
    assert s.runner_mode == "pexpect" and not s.suppress_output_file
    assert s.quiet is False and s.suppress_output_file is False


def test_spec_is_frozen(pdd: Path) -> None:
    s = spec(pdd)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.ident = "x"  # type: ignore[misc]


def test_every_simple_option(pdd: Path, tmp_path: Path) -> None:
    s = spec(
        pdd,
        ident="job-1",
        limit="web",
        tags=["a", "b"],
        skip_tags="c",
        forks=7,
        verbosity=4,
        binary="/opt/ansible-playbook",
        rotate_artifacts=3,
        quiet=True,
        json_mode=True,
        omit_event_data=True,
        only_failed_event_data=True,
        fact_cache="facts",
        fact_cache_type="jsonfile",
        artifact_dir=str(tmp_path / "arts"),
        suppress_env_files=True,
    )
    assert (s.ident, s.limit, s.tags, s.skip_tags) == ("job-1", "web", "a,b", "c")
    assert (s.forks, s.verbosity, s.binary, s.rotate_artifacts) == (
        7,
        4,
        "/opt/ansible-playbook",
        3,
    )
    assert s.quiet and s.json_mode and s.omit_event_data and s.only_failed_event_data
    assert s.artifact_dir == str(tmp_path / "arts")
    assert s.fact_cache_dir == str(tmp_path / "arts" / "job-1" / "facts")


def test_non_jsonfile_cache_has_no_dir(pdd: Path) -> None:
    assert spec(pdd, fact_cache_type="memory").fact_cache_dir is None


def test_handlers(pdd: Path) -> None:
    def handler(*_: Any) -> bool:
        return True

    s = spec(pdd, event_handler=handler, status_handler=handler, cancel_callback=handler,
             finished_callback=handler, artifacts_handler=handler)  # fmt: skip
    assert s.handlers.event_handler is handler
    assert s.handlers.artifacts_handler is handler


@pytest.mark.parametrize(
    "name",
    [
        "event_handler",
        "status_handler",
        "cancel_callback",
        "finished_callback",
        "artifacts_handler",
    ],
)
def test_handler_must_be_callable(pdd: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name} must be callable"):
        spec(pdd, **{name: "not callable"})


# --- what to run --------------------------------------------------------------------------


def test_playbook_absolute(pdd: Path) -> None:
    path = str(pdd / "project" / "site.yml")
    assert spec(pdd, playbook=path).playbook == path


def test_playbook_missing_says_where(pdd: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        spec(pdd, playbook="nope.yml")
    assert "playbook 'nope.yml' not found" in str(info.value)
    assert str(pdd / "project" / "nope.yml") in str(info.value)


def test_playbook_without_project_dir_is_relative_to_pdd(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text("[]")
    s = RunSpec.from_kwargs(private_data_dir=str(tmp_path), playbook="play.yml")
    assert s.playbook == str(tmp_path / "play.yml")


def test_playbook_with_project_dir_option(pdd: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "x.yml").write_text("[]")
    s = spec(pdd, project_dir=str(other), playbook="x.yml")
    assert s.playbook == str(other / "x.yml") and s.project_dir == str(other)


def test_playbook_without_private_data_dir(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text("[]")
    s = RunSpec.from_kwargs(playbook="x.yml", host_cwd=str(tmp_path))
    assert s.playbook == str(tmp_path / "x.yml")
    assert s.private_data_dir is None and s.artifact_dir is None
    assert s.job_artifact_dir is None and s.fact_cache_dir is None


def test_collection_playbook_is_not_a_file(pdd: Path) -> None:
    assert spec(pdd, playbook="my_ns.my_coll.deploy").playbook == "my_ns.my_coll.deploy"


def test_inline_plays(pdd: Path) -> None:
    plays = [{"hosts": "all", "tasks": [{"ping": None}]}]
    s = spec(pdd, playbook=plays)
    assert s.kind == "plays" and s.playbook is None
    assert s.inline_plays() == plays
    s = spec(pdd, playbook=plays[0])  # one play as a dict
    assert s.inline_plays() == plays


@pytest.mark.parametrize(
    ("playbook", "match"),
    [([], "empty list"), (["site.yml"], r"playbook\[0\] must be a play"), (3, "playbook must be")],
)
def test_bad_playbooks(pdd: Path, playbook: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        spec(pdd, playbook=playbook)


def test_adhoc(pdd: Path) -> None:
    s = RunSpec.from_kwargs(
        private_data_dir=str(pdd), module="shell", module_args="whoami", host_pattern="localhost"
    )
    assert s.kind == "adhoc" and s.playbook is None and s.inline_plays() is None
    assert (s.module, s.module_args, s.host_pattern) == ("shell", "whoami", "localhost")


def test_hosts_alias(pdd: Path) -> None:
    s = RunSpec.from_kwargs(private_data_dir=str(pdd), module="ping", hosts="web")
    assert s.host_pattern == "web"
    with pytest.raises(ConfigurationError, match="not both"):
        RunSpec.from_kwargs(private_data_dir=str(pdd), module="ping", hosts="a", host_pattern="b")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"playbook": "site.yml", "module": "ping", "host_pattern": "all"}, "playbook and module"),
        ({"playbook": "site.yml", "role": "myrole"}, "playbook and role"),
        ({"module": "ping", "role": "myrole"}, "module and role"),
        ({"module": "ping"}, "module needs host_pattern"),
        ({}, "nothing to run"),
        ({"playbook": "site.yml", "host_pattern": "all"}, "host_pattern only applies"),
        ({"playbook": "site.yml", "module_args": "x"}, "module_args only applies"),
        ({"playbook": "site.yml", "role_vars": {"a": 1}}, "role_vars only applies"),
        ({"playbook": "site.yml", "role_skip_facts": True}, "role_skip_facts only applies"),
        ({"module": "ping", "host_pattern": "all", "tags": "x"}, "tags only applies"),
        ({"module": "ping", "host_pattern": "all", "skip_tags": "x"}, "skip_tags only applies"),
        ({"module": "", "host_pattern": "all"}, "module must be a non-empty string"),
    ],
)
def test_what_to_run_errors(pdd: Path, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RunSpec.from_kwargs(private_data_dir=str(pdd), **kw)


# --- roles --------------------------------------------------------------------------------


def role_spec(pdd: Path, **kw: Any) -> RunSpec:
    return RunSpec.from_kwargs(private_data_dir=str(pdd), **kw)


def test_role_play_defaults(pdd: Path) -> None:
    s = role_spec(pdd, role="myrole")
    assert s.kind == "role"
    assert s.role_play() == [{"hosts": "all", "gather_facts": True, "roles": [{"name": "myrole"}]}]
    assert s.inline_plays() == s.role_play()
    assert s.roles_path == (str(pdd / "project" / "roles"),)
    assert s.ansible_roles_path == str(pdd / "project" / "roles")


def test_role_play_with_everything(pdd: Path) -> None:
    s = role_spec(pdd, role="myrole", role_vars={"a": 1}, role_skip_facts=True, host_pattern="web")
    assert s.role_play() == [
        {"hosts": "web", "gather_facts": False, "roles": [{"name": "myrole", "vars": {"a": 1}}]}
    ]


def test_role_play_needs_a_role(pdd: Path) -> None:
    with pytest.raises(ConfigurationError, match="role"):
        spec(pdd).role_play()


def test_role_in_roles_path(pdd: Path, tmp_path: Path) -> None:
    extra1, extra2 = tmp_path / "r1", tmp_path / "r2"
    (extra2 / "other").mkdir(parents=True)
    extra1.mkdir()
    s = role_spec(pdd, role="other", roles_path=f"{extra1}:{extra2}")
    assert s.roles_path == (str(extra1), str(extra2), str(pdd / "project" / "roles"))
    s = role_spec(pdd, role="other", roles_path=[str(extra2)])
    assert s.roles_path[0] == str(extra2)


def test_role_in_private_data_dir_roles(pdd: Path) -> None:
    (pdd / "roles" / "legacy").mkdir(parents=True)  # where ansible-runner also looks
    s = role_spec(pdd, role="legacy")
    assert str(pdd / "roles") in s.roles_path


def test_role_in_envvars_roles_path(pdd: Path, tmp_path: Path) -> None:
    (tmp_path / "envroles" / "fromenv").mkdir(parents=True)
    s = role_spec(pdd, role="fromenv", envvars={"ANSIBLE_ROLES_PATH": str(tmp_path / "envroles")})
    assert str(tmp_path / "envroles") in s.roles_path


def test_unknown_role_lists_searched_paths(pdd: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        role_spec(pdd, role="ghost", roles_path=str(tmp_path))
    message = str(info.value)
    assert "role 'ghost' not found" in message
    assert str(pdd / "project" / "roles") in message and str(tmp_path) in message


def test_collection_role_is_not_checked(pdd: Path) -> None:
    assert role_spec(pdd, role="ns.coll.thing").role == "ns.coll.thing"


def test_roles_path_without_role_sets_only_given(pdd: Path, tmp_path: Path) -> None:
    s = spec(pdd, roles_path=[str(tmp_path)])
    assert s.ansible_roles_path == str(tmp_path)


def test_bad_roles_path(pdd: Path) -> None:
    with pytest.raises(ConfigurationError, match="roles_path"):
        role_spec(pdd, role="myrole", roles_path=3)
    with pytest.raises(ConfigurationError, match="role_vars must be a mapping"):
        role_spec(pdd, role="myrole", role_vars=["a"])


# --- inventory ----------------------------------------------------------------------------


def test_inventory_dict_becomes_yaml(pdd: Path) -> None:
    inv = {"all": {"hosts": {"web1": {"ansible_host": "10.0.0.1"}}}}
    s = spec(pdd, inventory=inv)
    assert s.inventory == () and s.inventory_data == inv
    name_content = s.inventory_file()
    assert name_content is not None
    assert name_content[0] == "hosts.yml" and yaml.safe_load(name_content[1]) == inv


def test_inventory_ini_text(pdd: Path) -> None:
    text = "[web]\nweb1 ansible_host=10.0.0.1\n"
    s = spec(pdd, inventory=text)
    assert s.inventory == () and s.inventory_file() == ("hosts", text)
    s = spec(pdd, inventory="localhost ansible_connection=local")
    assert s.inventory_file() == ("hosts", "localhost ansible_connection=local")


def test_inventory_paths(pdd: Path, tmp_path: Path) -> None:
    assert spec(pdd, inventory="hosts").inventory == (str(pdd / "inventory" / "hosts"),)
    other = tmp_path / "other.ini"
    other.write_text("x\n")
    assert spec(pdd, inventory=str(other)).inventory == (str(other),)
    both = spec(pdd, inventory=["hosts", str(other)]).inventory
    assert both == (str(pdd / "inventory" / "hosts"), str(other))
    assert spec(pdd, inventory="web1,web2,").inventory == ("web1,web2,",)
    assert spec(pdd).inventory_file() is None


def test_inventory_missing_path(pdd: Path) -> None:
    with pytest.raises(ConfigurationError, match="inventory '/no/such/inv' not found"):
        spec(pdd, inventory="/no/such/inv")
    with pytest.raises(ConfigurationError, match="inventory 'nope' not found"):
        spec(pdd, inventory=["nope"])
    with pytest.raises(ConfigurationError, match="inventory must be"):
        spec(pdd, inventory=3)


# --- scalar validation --------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["", "  ", "a/b", "..", "x..y", "../up", True])
def test_bad_ident(pdd: Path, ident: Any) -> None:
    with pytest.raises(ConfigurationError, match="ident"):
        spec(pdd, ident=ident)


def test_int_ident(pdd: Path) -> None:
    assert spec(pdd, ident=42).ident == "42"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"forks": -1}, "forks must not be negative"),
        ({"forks": 1.5}, "forks"),
        ({"verbosity": 6}, "verbosity must be a whole number from 0 to 5"),
        ({"verbosity": -1}, "verbosity"),
        ({"verbosity": "vv"}, "verbosity"),
        ({"rotate_artifacts": -2}, "rotate_artifacts"),
        ({"quiet": "yes"}, "quiet must be True or False"),
        ({"limit": ""}, "limit"),
        ({"fact_cache": "../escape"}, "fact_cache"),
        ({"fact_cache": "/abs"}, "fact_cache"),
        ({"extravars": ["a"]}, "extravars must be a mapping"),
        ({"passwords": {"(": "x"}}, "passwords: prompt pattern"),
        ({"envvars": "A=1"}, "envvars must be a mapping"),
        ({"settings": {"bogus": 1}}, "settings: unknown setting 'bogus'"),
        ({"cmdline": "'unbalanced"}, "cmdline: cannot split"),
        ({"ssh_key": 3}, "ssh_key"),
        ({"process_isolation_executable": "bwrap"}, "process_isolation_executable"),
        ({"private_data_dir": 3}, "private_data_dir"),
    ],
)
def test_bad_values_name_the_option(pdd: Path, kw: dict[str, Any], match: str) -> None:
    kw.setdefault("private_data_dir", str(pdd))
    with pytest.raises(ConfigurationError, match=match):
        RunSpec.from_kwargs(playbook="site.yml", **kw)


def test_forks_zero_means_default(pdd: Path) -> None:
    assert spec(pdd, forks=0).forks is None


def test_unknown_keyword_is_named(pdd: Path) -> None:
    with pytest.raises(ConfigurationError, match="unexpected keyword argument 'playbok'"):
        spec(pdd, playbok="x")
    with pytest.raises(ConfigurationError, match="did you mean extravars"):
        spec(pdd, extra_vars={"a": 1})


def test_unsupported_ansible_runner_option_explained(pdd: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"process_isolation_hide_paths.*bubblewrap"):
        spec(pdd, process_isolation_hide_paths=["/x"])


# --- precedence: kwargs over the private data dir -----------------------------------------


def test_kwargs_win_over_env_files_key_by_key(pdd: Path) -> None:
    env_file(pdd, "extravars", "a: file\nb: file\n")
    env_file(pdd, "passwords", '{"Password:": "file", "Vault:": "file"}')
    env_file(pdd, "envvars", "A: file\nB: file\n")
    s = spec(
        pdd,
        extravars={"b": "kw", "c": "kw"},
        passwords={"Vault:": "kw"},
        envvars={"B": "kw"},
    )
    assert s.extravars == {"a": "file", "b": "kw", "c": "kw"}
    assert s.passwords == {"Password:": "file", "Vault:": "kw"}
    assert s.execution.envvars == {"A": "file", "B": "kw"}


def test_files_used_when_no_kwargs(pdd: Path) -> None:
    env_file(pdd, "cmdline", "--diff -e 'x=1 2'\n")
    env_file(pdd, "ssh_key", "FILEKEY\n")
    s = spec(pdd)
    assert s.cmdline == ("--diff", "-e", "x=1 2")
    assert s.ssh_key == "FILEKEY\n"


def test_cmdline_and_ssh_key_kwargs_win(pdd: Path) -> None:
    env_file(pdd, "cmdline", "--diff")
    env_file(pdd, "ssh_key", "FILEKEY")
    s = spec(pdd, cmdline="--check --tags 'a b'", ssh_key="KWKEY")
    assert s.cmdline == ("--check", "--tags", "a b")
    assert s.ssh_key == "KWKEY"
    assert spec(pdd, cmdline=["--list-tasks"]).cmdline == ("--list-tasks",)


def test_bad_cmdline_file_named(pdd: Path) -> None:
    env_file(pdd, "cmdline", "--diff 'open")
    with pytest.raises(ConfigurationError, match=str(pdd / "env" / "cmdline")):
        spec(pdd)


def test_settings_file_supplies_defaults(pdd: Path) -> None:
    env_file(
        pdd,
        "settings",
        "process_isolation: true\nprocess_isolation_executable: docker\n"
        "container_image: network-ee\ncontainer_options: ['--network=host']\n"
        "container_volume_mounts: []\nidle_timeout: 30\njob_timeout: 600\n"
        "pexpect_timeout: 9\npexpect_use_poll: true\nsuppress_ansible_output: true\n"
        "suppress_output_file: true\nfact_cache: facts\nfact_cache_type: jsonfile\n",
    )
    s = spec(pdd)
    ex = s.execution
    assert ex.process_isolation is True and ex.engine == "docker"
    assert ex.container_image == "network-ee"
    assert ex.container_options == ("--network=host",)
    assert ex.idle_timeout == 30.0 and ex.job_timeout == 600.0
    assert s.pexpect_timeout == 9.0
    assert s.quiet is True and s.suppress_output_file is True
    assert s.fact_cache == "facts"
    # what the Runner gets: pexpect_timeout spaces the cancel_callback calls
    job = build_run_job(dataclasses.replace(s, playbook=str(pdd / "project" / "site.yml")))
    assert (job.cancel_poll, job.quiet, job.suppress_output_file) == (9.0, True, True)
    command_job = build_command_job(["true"], {"private_data_dir": str(pdd)}, "run_command")
    assert (command_job.cancel_poll, command_job.quiet) == (9.0, True)


def test_kwargs_win_over_settings_file(pdd: Path) -> None:
    env_file(
        pdd,
        "settings",
        "process_isolation: true\ncontainer_image: from-file\nidle_timeout: 30\n"
        "job_timeout: 600\nsuppress_ansible_output: true\nfact_cache: facts\n",
    )
    s = spec(
        pdd,
        process_isolation=False,
        container_image="from-kw",
        idle_timeout=5,
        timeout=60,
        quiet=False,
        fact_cache="kwfacts",
    )
    assert s.execution.process_isolation is False
    assert s.execution.container_image == "from-kw"
    assert s.execution.idle_timeout == 5.0 and s.execution.job_timeout == 60.0
    assert s.quiet is False and s.fact_cache == "kwfacts"


def test_none_kwargs_count_as_not_given(pdd: Path) -> None:
    env_file(pdd, "settings", "container_image: from-file\n")
    s = spec(pdd, container_image=None, extravars=None, ssh_key=None, ident=None)
    assert s.execution.container_image == "from-file"


def test_settings_kwarg_over_file_under_explicit(pdd: Path) -> None:
    env_file(pdd, "settings", "container_image: file\nidle_timeout: 30\njob_timeout: 10\n")
    s = spec(pdd, settings={"container_image": "settings-kw", "job_timeout": 20})
    assert s.execution.container_image == "settings-kw"
    assert s.execution.idle_timeout == 30.0 and s.execution.job_timeout == 20.0
    s = spec(pdd, settings={"container_image": "settings-kw"}, container_image="explicit")
    assert s.execution.container_image == "explicit"


def test_bad_settings_file_named(pdd: Path) -> None:
    env_file(pdd, "settings", "container_auth_data: {}\n")
    with pytest.raises(ConfigurationError) as info:
        spec(pdd)
    assert str(pdd / "env" / "settings") in str(info.value)
    assert "'container_auth_data'" in str(info.value)


def test_nothing_written_to_private_data_dir(pdd: Path) -> None:
    env_file(pdd, "extravars", "a: 1\n")
    env_file(pdd, "settings", "idle_timeout: 3\n")

    def snapshot() -> dict[str, tuple[int, int]]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(pdd):
            for name in dirnames + filenames:
                st = os.stat(os.path.join(dirpath, name))
                out[os.path.join(dirpath, name)] = (st.st_mtime_ns, st.st_size)
        return out

    before = snapshot()
    RunSpec.from_kwargs(
        private_data_dir=str(pdd),
        playbook=[{"hosts": "all", "tasks": []}],
        inventory={"all": {"hosts": {"h": {}}}},
        extravars={"secret": "x"},
        passwords={"Password:": "hunter2"},
        envvars={"TOKEN": "t"},
        ssh_key="KEY",
        cmdline="--diff",
        settings={"job_timeout": 5},
    )
    RunSpec.from_kwargs(private_data_dir=str(pdd), role="myrole")
    assert snapshot() == before
    assert sorted(os.listdir(pdd / "env")) == ["extravars", "settings"]
    assert not (pdd / "artifacts").exists()


def test_runner_layout_paths_resolve_in_the_private_data_dir(pdd: Path) -> None:
    """ansible-runner's container paths (/runner/...) name files of the private data dir."""
    (pdd / "inventory").mkdir(exist_ok=True)
    (pdd / "inventory" / "hosts").write_text("localhost\n")
    s = spec(pdd, playbook="/runner/project/site.yml", inventory="/runner/inventory/hosts")
    assert s.playbook == str(pdd / "project" / "site.yml")
    assert s.inventory == (str(pdd / "inventory" / "hosts"),)


def test_settings_file_gives_container_network(pdd: Path) -> None:
    env_file(pdd, "settings", "process_isolation: true\ncontainer_network: host\n")
    assert spec(pdd).execution.container_network == "host"
    assert spec(pdd, container_network="none").execution.container_network == "none"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("user:pw", "container_auth_data must be a mapping"),
        ({"host": "r.example", "username": "u", "password": "p", "token": 1}, "token"),
        ({"host": "", "username": "u", "password": "p"}, "'host'"),
        ({"host": "r.example", "username": "u"}, "'password'"),
        ({"host": "r.example", "username": "u", "password": "p", "verify_ssl": "no"}, "verify_ssl"),
    ],
)
def test_bad_container_auth_data_named(value: object, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ExecutionOptions.from_kwargs(container_auth_data=value)
    assert named in str(info.value)
    assert "'p'" not in str(info.value)


def test_container_auth_data_password_not_in_repr() -> None:
    options = ExecutionOptions.from_kwargs(
        container_auth_data={"host": "r.example", "username": "u", "password": "s3cr3t-mark"}
    )
    assert options.container_auth is not None
    assert options.container_auth.verify_ssl is True
    assert "s3cr3t-mark" not in repr(options)
