"""containerize(): host vs container, mounts, labels, env by name; and the pure helpers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ConfigurationError
from containerrunner.isolation import (
    Engine,
    Mount,
    container_name,
    containerize,
    is_pinned,
    pin_matches,
)
from containerrunner.isolation.client_types import normalise_id
from containerrunner.isolation.engine import CONTAINER_HOME

PODMAN = Engine(name="podman", executable="/usr/bin/podman", rootless=True)
DOCKER = Engine(name="docker", executable="/usr/bin/docker")
SECRET = "s3cr3t-Value-that-must-not-leak"


@pytest.fixture()
def proj(tmp_path: Path) -> Path:
    (tmp_path / "hosts.ini").write_text("localhost\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id").write_text("KEY")
    return tmp_path


def opts(proj: Path, **kw: object) -> ExecutionOptions:
    return ExecutionOptions.from_kwargs(host_cwd=str(proj), **kw)


def values_of(argv: tuple[str, ...], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


@pytest.mark.parametrize(
    "name",
    [
        "abc",
        "a/b c:d",
        "élan",
        "2024-01-01T00:00:00.123+00:00",
    ],
)
def test_container_name_is_sanitised(name: str) -> None:
    got = container_name(name)
    assert got.startswith("containerrunner_")
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in got)
    assert container_name("a/b c") == "containerrunner_a_b_c"


def test_host_invocation(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CR_TEST_HOST_VAR", "host")
    inv = containerize(
        ["ansible-playbook", "site.yml"],
        options=opts(proj),
        ident="j1",
        env={"TOKEN": SECRET, "CR_TEST_HOST_VAR": "job"},
        engine=PODMAN,
    )
    assert inv.argv == ("ansible-playbook", "site.yml")
    assert inv.cwd == str(proj)
    assert inv.container_name is None and inv.engine is None
    assert inv.env["TOKEN"] == SECRET
    assert inv.env["CR_TEST_HOST_VAR"] == "job"  # the job's variables win
    assert inv.env["PATH"] == os.environ["PATH"]


@pytest.mark.parametrize("engine", [PODMAN, DOCKER], ids=["podman", "docker"])
def test_container_invocation(proj: Path, engine: Engine) -> None:
    vol = proj / "data"
    vol.mkdir()
    inv = containerize(
        [
            "ansible-playbook",
            "-i",
            "hosts.ini",
            "--private-key",
            "keys/id",
            "-e",
            "x=1",
            "site.yml",
        ],
        options=opts(
            proj,
            process_isolation=True,
            container_image="localhost/ee:2",
            container_options=["--network=none"],
            container_volume_mounts=[f"{vol}:/data:ro"],
            pull="never",
        ),
        ident="job/1",
        env={"TOKEN": SECRET, "ANSIBLE_FORCE_COLOR": "1"},
        engine=engine,
    )
    argv = inv.argv
    assert argv[:5] == (engine.executable, "run", "--rm", "--name", "containerrunner_job_1")
    assert inv.container_name == "containerrunner_job_1"
    assert inv.engine is engine
    assert inv.cwd == str(proj)
    labels = values_of(argv, "--label")
    assert labels == [
        "containerrunner=1",
        "containerrunner.ident=job/1",
        f"containerrunner.owner-host={socket.gethostname()}",
        f"containerrunner.owner-pid={os.getpid()}",
        f"containerrunner.owner-uid={os.getuid()}",
    ]
    assert values_of(argv, "-w") == [str(proj)]
    assert values_of(argv, "-v") == [  # sorted by target: parents before children
        f"{vol}:/data:ro",
        f"{proj}:{proj}",
        f"{proj}/keys/id:{proj}/keys/id:ro",  # a secret stays read-only inside the rw cwd
    ]
    engine_part = argv[: argv.index("localhost/ee:2")]
    user_args = engine.user_args(os.getuid(), os.getgid())
    home = [f"HOME={CONTAINER_HOME}"] if f"HOME={CONTAINER_HOME}" in user_args else []
    assert values_of(engine_part, "-e") == [*home, "ANSIBLE_FORCE_COLOR", "TOKEN"]
    assert "--pull=never" in argv
    assert argv[argv.index("localhost/ee:2") - 1] == "--network=none"
    assert argv[argv.index("localhost/ee:2") + 1 :] == (
        "ansible-playbook",
        "-i",
        "hosts.ini",
        "--private-key",
        "keys/id",
        "-e",
        "x=1",
        "site.yml",
    )
    if engine.name == "docker":
        assert values_of(argv, "--user") == [f"{os.getuid()}:{os.getgid()}"]
    else:
        assert "--userns=keep-id" in argv
    # values go to the engine's environment, never onto its command line
    assert inv.env["TOKEN"] == SECRET
    assert not any(SECRET in a for a in argv)
    assert "--env-file" not in argv


def test_container_workdir_override_keeps_cwd_mounted(proj: Path) -> None:
    inv = containerize(
        ["true"],
        options=opts(proj, process_isolation=True, container_workdir="/runner"),
        ident="j",
        env={},
        engine=DOCKER,
    )
    assert values_of(inv.argv, "-w") == ["/runner"]
    assert values_of(inv.argv, "-v") == [f"{proj}:{proj}"]


def test_tty_and_interactive(proj: Path) -> None:
    inv = containerize(
        ["bash"],
        options=opts(proj, process_isolation=True),
        ident="j",
        env={},
        tty=True,
        interactive=True,
        engine=PODMAN,
    )
    assert inv.argv.index("-i") < inv.argv.index("-t") < inv.argv.index("-w")
    plain = containerize(
        ["bash"], options=opts(proj, process_isolation=True), ident="j", env={}, engine=PODMAN
    )
    assert "-i" not in plain.argv and "-t" not in plain.argv


def test_extra_mounts_and_env_mounts(proj: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    art = tmp_path_factory.mktemp("artifacts")
    plugin = tmp_path_factory.mktemp("callback")
    inv = containerize(
        ["ansible", "all", "-m", "ping"],
        options=opts(proj, process_isolation=True),
        ident="j",
        env={"CONTAINERRUNNER_ARTIFACT_DIR": str(art)},
        extra_mounts=[Mount.same_path(str(plugin), read_only=True)],
        engine=DOCKER,
    )
    mounts = values_of(inv.argv, "-v")
    assert f"{art}:{art}" in mounts
    assert f"{plugin}:{plugin}:ro" in mounts


def test_invalid_volume_mount_names_the_option(proj: Path) -> None:
    with pytest.raises(ConfigurationError, match="container_volume_mounts"):
        containerize(
            ["true"],
            options=opts(proj, process_isolation=True, container_volume_mounts=["/:/host"]),
            ident="j",
            env={},
            engine=PODMAN,
        )


def test_system_dir_cwd_is_not_mounted() -> None:
    options = ExecutionOptions(process_isolation=True, host_cwd="/")
    inv = containerize(["true"], options=options, ident="j", env={}, engine=PODMAN)
    assert values_of(inv.argv, "-v") == []
    assert values_of(inv.argv, "-w") == ["/"]


# -- pure helpers of images.py and reaper.py ----------------------------------------------------


def test_is_pinned() -> None:
    assert is_pinned("quay.io/x/ee@sha256:" + "a" * 64)
    assert not is_pinned("quay.io/x/ee:latest")
    assert not is_pinned("localhost/ee")
    assert is_pinned("sha256:" + "b" * 64)
    assert is_pinned("7f60427e4565")
    assert not is_pinned("7f60427e456")  # shorter than an engine's short ID
    assert not is_pinned("localhost/7f60427e4565")


def test_pin_matches() -> None:
    full = "sha256:7f60427e4565" + "c" * 52
    assert pin_matches("localhost/ee:latest", full) is None
    assert pin_matches("7f60427e4565", full) is True
    assert pin_matches(full, full[7:]) is True  # podman prints the bare hex
    assert pin_matches("0f969aabf5ab", full) is False
    assert pin_matches("quay.io/x/ee@sha256:" + "a" * 64, full) is True
    assert pin_matches("7f60427e4565", None) is False


def test_image_id_normalised() -> None:
    assert normalise_id("abc123") == "sha256:abc123"
    assert normalise_id("sha256:abc123") == "sha256:abc123"


def test_engine_cleanup_args() -> None:
    assert PODMAN.remove_args("n") == ["rm", "--force", "--time", "0", "n"]
    assert DOCKER.remove_args("n") == ["rm", "--force", "n"]
    assert (PODMAN.removed_event, DOCKER.removed_event) == ("remove", "destroy")
    assert PODMAN.stop_args("n", 0.5) == DOCKER.stop_args("n", 0.5) == ["stop", "--time", "1", "n"]


@pytest.mark.parametrize("engine", [PODMAN, DOCKER], ids=["podman", "docker"])
def test_container_network_becomes_one_network_flag(engine: Engine, proj: Path) -> None:
    inv = containerize(
        ["ansible", "all", "-m", "ping"],
        options=opts(proj, process_isolation=True, container_network="host"),
        ident="net",
        env={},
        engine=engine,
    )
    assert [a for a in inv.argv if a.startswith("--net")] == ["--network=host"]
    default = containerize(
        ["true"], options=opts(proj, process_isolation=True), ident="d", env={}, engine=engine
    )
    assert not [a for a in default.argv if a.startswith("--net")]  # the engine's default


@pytest.mark.parametrize(
    "options", [["--network=host"], ["--net", "host"], ["--cap-add", "NET_RAW", "--net=none"]]
)
def test_container_network_and_a_network_container_option_refused(
    proj: Path, options: list[str]
) -> None:
    with pytest.raises(ConfigurationError, match="container_network='host' and container_options"):
        opts(proj, container_network="host", container_options=options)


@pytest.mark.parametrize("bad", ["", "host net", "--network=host", "-x", 5, "ns:", "a=b"])
def test_bad_container_network_named(proj: Path, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="container_network must be"):
        opts(proj, container_network=bad)


@pytest.mark.parametrize("good", ["host", "none", "bridge", "lab_net.1", "container:ee1"])
def test_container_network_values_kept(proj: Path, good: str) -> None:
    assert opts(proj, container_network=good).container_network == good


def test_missing_network_namespace_named(proj: Path) -> None:
    missing = proj / "no-such-netns"
    with pytest.raises(ConfigurationError, match=f"no network namespace at {missing}"):
        opts(proj, container_network=f"ns:{missing}")


def test_existing_network_namespace_path_kept(proj: Path) -> None:
    netns = proj / "netns-file"
    netns.touch()
    assert opts(proj, container_network=f"ns:{netns}").container_network == f"ns:{netns}"
