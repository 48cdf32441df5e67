"""The CLI's argument parsing and its mapping to run() keyword arguments (no processes)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from containerrunner.cli.args import UsageError, build_parser, parse_args, parse_role_vars
from containerrunner.cli.common import exit_code
from containerrunner.cli.execcmd import (
    collect_passwords,
    parse_env_options,
    parse_password_option,
)
from containerrunner.cli.jobcmds import job_artifact_dir, run_kwargs


def kwargs_for(argv: list[str]) -> dict[str, object]:
    return run_kwargs(parse_args(argv))


def test_every_ansible_runner_flag_maps_to_a_run_kwarg(tmp_path: Path) -> None:
    kw = kwargs_for(
        [
            "run",
            str(tmp_path),
            "-p",
            "site.yml",
            "--limit",
            "web",
            "--tags",
            "a,b",
            "--skip-tags",
            "c",
            "--forks",
            "7",
            "--inventory",
            "hosts",
            "--cmdline",
            "-e x=1",
            "-vvv",
            "-i",
            "job1",
            "--rotate-artifacts",
            "3",
            "--artifact-dir",
            str(tmp_path / "a"),
            "--process-isolation",
            "--process-isolation-executable",
            "docker",
            "--container-image",
            "img:1",
            "--container-volume-mount",
            "/srv:/srv",
            "--container-volume-mount",
            "/opt:/opt:ro",
            "--container-option",
            "--net=host",
            "--container-option=--cap-add=NET_ADMIN",
            "--timeout",
            "30",
            "--idle-timeout",
            "5",
            "--start-timeout",
            "60",
            "--termination-grace",
            "2",
            "--container-network",
            "host",
            "--pull",
            "never",
            "--omit-event-data",
        ]
    )
    assert kw == {
        "private_data_dir": str(tmp_path),
        "ident": "job1",
        "playbook": "site.yml",
        "limit": "web",
        "tags": "a,b",
        "skip_tags": "c",
        "forks": 7,
        "inventory": "hosts",
        "cmdline": "-e x=1",
        "verbosity": 3,
        "rotate_artifacts": 3,
        "artifact_dir": str(tmp_path / "a"),
        "process_isolation": True,
        "process_isolation_executable": "docker",
        "container_image": "img:1",
        "container_volume_mounts": ["/srv:/srv", "/opt:/opt:ro"],
        "container_options": ["--net=host", "--cap-add=NET_ADMIN"],
        "timeout": 30.0,
        "idle_timeout": 5.0,
        "start_timeout": 60.0,
        "termination_grace": 2.0,
        "container_network": "host",
        "pull": "never",
        "omit_event_data": True,
    }


def test_option_values_starting_with_a_dash(tmp_path: Path) -> None:
    kw = kwargs_for(
        [
            "run",
            str(tmp_path),
            "-m",
            "command",
            "--hosts",
            "all",
            "-a",
            "-la",
            "--cmdline",
            "--check",
            "--container-option",
            "--net=host",
        ]
    )
    assert kw["module_args"] == "-la"
    assert kw["cmdline"] == "--check"
    assert kw["container_options"] == ["--net=host"]
    assert parse_args(["exec", "--", "sh", "-a", "-x"]).cmd == ["sh", "-a", "-x"]
    assert parse_args(["exec", "ls", "-a", "-l"]).cmd == ["ls", "-a", "-l"]


def test_module_and_role_runs(tmp_path: Path) -> None:
    kw = kwargs_for(["run", str(tmp_path), "-m", "ping", "-a", "data=x", "--hosts", "all"])
    assert kw["module"] == "ping" and kw["module_args"] == "data=x" and kw["host_pattern"] == "all"
    kw = kwargs_for(
        [
            "run",
            str(tmp_path),
            "-r",
            "web",
            "--role-vars",
            "port=80 name='a b'",
            "--roles-path",
            "/r",
            "--role-skip-facts",
            "--hosts",
            "db",
        ]
    )
    assert kw["role"] == "web"
    assert kw["role_vars"] == {"port": "80", "name": "a b"}
    assert kw["roles_path"] == "/r" and kw["role_skip_facts"] is True


def test_ident_defaults_to_a_new_uuid_and_names_the_artifact_dir(tmp_path: Path) -> None:
    kw = kwargs_for(["run", str(tmp_path), "-p", "site.yml"])
    assert len(str(kw["ident"])) == 36
    assert job_artifact_dir(kw) == str(tmp_path / "artifacts" / str(kw["ident"]))


def test_engine_implies_process_isolation(tmp_path: Path) -> None:
    kw = kwargs_for(["run", str(tmp_path), "-p", "x.yml", "--engine", "podman"])
    assert kw["process_isolation"] is True
    assert kw["process_isolation_executable"] == "podman"
    with pytest.raises(UsageError, match="disagree"):
        kwargs_for(
            [
                "run",
                str(tmp_path),
                "-p",
                "x.yml",
                "--engine",
                "podman",
                "--process-isolation-executable",
                "docker",
            ]
        )


def test_engine_url_implies_process_isolation(tmp_path: Path) -> None:
    url = "ssh://root@10.231.18.2/run/podman.sock"
    kw = kwargs_for(["run", str(tmp_path), "-p", "x.yml", "--engine-url", url])
    assert (kw["process_isolation"], kw["engine_url"]) == (True, url)


def test_unset_options_are_left_out(tmp_path: Path) -> None:
    """So env/settings in the private data dir decide what the command line does not."""
    kw = kwargs_for(["run", str(tmp_path), "-p", "x.yml"])
    assert set(kw) == {"private_data_dir", "ident", "playbook"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "d", "-p", "a", "-m", "b"], "not allowed with"),
        (["run", "d", "--bogus"], "unrecognized arguments"),
        (["run"], "required"),
        (["run", "d", "--engine", "lxc"], "invalid choice"),
        (["exec"], "needs a command"),
        (["exec", "--"], "needs a command"),
        (["images"], "build, lock, list or inspect"),
        ([], "a command is required"),
    ],
)
def test_usage_errors_raise(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_args(argv)


def test_missing_dir_and_nothing_to_run_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        kwargs_for(["run", str(tmp_path / "missing"), "-p", "x.yml"])
    with pytest.raises(UsageError, match="-p PLAYBOOK, -m MODULE or -r ROLE"):
        kwargs_for(["run", str(tmp_path)])


def test_exec_command_after_double_dash() -> None:
    args = parse_args(["exec", "--engine", "docker", "--", "ansible", "--version"])
    assert args.cmd == ["ansible", "--version"]
    assert args.engine == "docker"
    args = parse_args(["exec", "ls", "-l"])
    assert args.cmd == ["ls", "-l"]


def test_debug_is_accepted_before_and_after_the_command(tmp_path: Path) -> None:
    assert parse_args(["--debug", "run", str(tmp_path), "-p", "x"]).debug is True
    assert parse_args(["run", str(tmp_path), "-p", "x", "--debug"]).debug is True
    assert parse_args(["run", str(tmp_path), "-p", "x"]).debug is False


def test_every_command_has_help_with_examples() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        assert "example" in (sub.epilog or ""), name
    assert "example" in (parser.epilog or "")


def test_role_vars_errors() -> None:
    with pytest.raises(UsageError, match="key=value"):
        parse_role_vars("novalue")
    with pytest.raises(UsageError, match="cannot split"):
        parse_role_vars("a='unterminated")


def test_password_options(tmp_path: Path) -> None:
    assert parse_password_option("Vault password.*:=secret") == ("Vault password.*:", "secret")
    assert parse_password_option("a=b=c") == ("a=b", "c")
    with pytest.raises(UsageError, match="REGEX=ANSWER"):
        parse_password_option("nothing")
    with pytest.raises(UsageError, match="not a valid regex"):
        parse_password_option("(unclosed=x")
    pw_file = tmp_path / "passwords"
    pw_file.write_text("'^SSH password:\\s*?$': ssh\n'Vault password.*:': file\n")
    args = parse_args(
        [
            "exec",
            "--passwords-file",
            str(pw_file),
            "--password",
            "Vault password.*:=cli",
            "--",
            "true",
        ]
    )
    assert collect_passwords(args) == {"^SSH password:\\s*?$": "ssh", "Vault password.*:": "cli"}
    pw_file.write_text("- a list\n")
    with pytest.raises(UsageError, match="mapping"):
        collect_passwords(parse_args(["exec", "--passwords-file", str(pw_file), "true"]))


@pytest.mark.parametrize(
    ("status", "rc", "code"),
    [
        ("successful", 0, 0),
        ("failed", 2, 2),
        ("failed", 0, 1),
        ("canceled", None, 1),
        ("canceled", -15, 143),
        ("timeout", 254, 254),
        ("successful", None, 0),
    ],
)
def test_exit_code(status: str, rc: int | None, code: int) -> None:
    assert exit_code(status, rc) == code


def test_env_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    assert parse_env_options(["A=1", "B=", "FROM_HOST", "NOT_SET_ANYWHERE", "C=x=y"]) == {
        "A": "1",
        "B": "",
        "FROM_HOST": "h",
        "C": "x=y",
    }
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_env_options(["=x"])
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_env_options(["bad name=1"])


def test_session_actions_and_the_session_option_parse() -> None:
    args = parse_args(["session", "start", "--engine", "docker", "--mount", "/srv", "-i", "s1"])
    assert (args.session_command, args.engine, args.mounts, args.ident) == (
        "start", "docker", ["/srv"], "s1",
    )  # fmt: skip
    assert parse_args(["session", "stop", "s1"]).session_id == "s1"
    assert parse_args(["session", "list", "--json"]).json
    assert parse_args(["run", "pdd", "-p", "x.yml", "--session", "s1"]).session == "s1"
    assert parse_args(["exec", "--session", "s1", "--", "true"]).session == "s1"
    with pytest.raises(UsageError, match="session needs an action"):
        parse_args(["session"])
    with pytest.raises(UsageError):
        parse_args(["session", "stop"])
