"""Golden `<engine> run ...` argv for podman and docker (no process is started)."""

from __future__ import annotations

from typing import Any

import pytest

from containerrunner.errors import ConfigurationError
from containerrunner.isolation import ContainerSpec, Engine, Mount, build_run_argv, normalise_mounts

PODMAN_ROOTLESS = Engine(name="podman", executable="/usr/bin/podman", rootless=True)
PODMAN_ROOT = Engine(name="podman", executable="/usr/bin/podman", rootless=False)
PODMAN_SELINUX = Engine(name="podman", executable="/usr/bin/podman", rootless=True, selinux=True)
DOCKER = Engine(name="docker", executable="/usr/bin/docker")
DOCKER_SELINUX = Engine(name="docker", executable="/usr/bin/docker", selinux=True)

LABELS = {
    "containerrunner.owner-pid": "4242",
    "containerrunner": "1",
    "containerrunner.ident": "job1",
    "containerrunner.owner-host": "hostA",
}
LABEL_ARGS = [
    "--label",
    "containerrunner=1",
    "--label",
    "containerrunner.ident=job1",
    "--label",
    "containerrunner.owner-host=hostA",
    "--label",
    "containerrunner.owner-pid=4242",
]
CMD = ["ansible-playbook", "-i", "inv", "site.yml"]


def spec(engine: Engine, **kw: Any) -> ContainerSpec:
    base: dict[str, Any] = {
        "engine": engine,
        "image": "localhost/ee:1",
        "name": "containerrunner_job1",
        "workdir": "/work/proj",
        "mounts": (Mount.same_path("/work/proj"),),
        "env_names": ("ANSIBLE_FORCE_COLOR", "SECRET_TOKEN"),
        "labels": LABELS,
        "user": (1000, 1000),
        "pull": "missing",
    }
    base.update(kw)
    return ContainerSpec(**base)


def head(exe: str) -> list[str]:
    return [exe, "run", "--rm", "--name", "containerrunner_job1", *LABEL_ARGS]


ENV_ARGS = ["-e", "ANSIBLE_FORCE_COLOR", "-e", "SECRET_TOKEN"]
# A non-root caller gets a writable HOME (Ansible writes ~/.ansible/tmp).
HOME_ARGS = ["-e", "HOME=/tmp/containerrunner-home"]
# Rootless podman: the caller's id mapped to itself, with that home in its passwd entry (podman
# fills in $USERNAME, $UID and $GID).
KEEP_ID_ARGS = [
    "--userns=keep-id",
    "--passwd-entry=$USERNAME:*:$UID:$GID::/tmp/containerrunner-home:/bin/sh",
    *HOME_ARGS,
]

CASES: list[tuple[str, ContainerSpec, list[str]]] = [
    (
        "podman-rootless-default",
        spec(PODMAN_ROOTLESS),
        [
            *head("/usr/bin/podman"),
            *KEEP_ID_ARGS,
            "--pull=missing",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            *ENV_ARGS,
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-root-no-userns",
        spec(PODMAN_ROOT, user=(0, 0)),
        [
            *head("/usr/bin/podman"),
            "--pull=missing",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            *ENV_ARGS,
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-default",
        spec(DOCKER),
        [
            *head("/usr/bin/docker"),
            "--user",
            "1000:1000",
            *HOME_ARGS,
            "--pull=missing",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            *ENV_ARGS,
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-selinux-ro-and-system-dir",
        spec(
            PODMAN_SELINUX,
            mounts=(
                Mount.same_path("/work/proj"),
                Mount.same_path("/work/keys/id", secret=True),
                Mount("/etc/ansible", "/etc/ansible", read_only=True),
            ),
        ),
        [
            *head("/usr/bin/podman"),
            *KEEP_ID_ARGS,
            "--pull=missing",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj:z",
            "-v",
            "/work/keys/id:/work/keys/id:ro,z",
            "-v",
            "/etc/ansible:/etc/ansible:ro",
            *ENV_ARGS,
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-selinux-ro",
        spec(DOCKER_SELINUX, mounts=(Mount("/data/in", "/in", read_only=True),)),
        [
            *head("/usr/bin/docker"),
            "--user",
            "1000:1000",
            *HOME_ARGS,
            "--pull=missing",
            "-w",
            "/work/proj",
            "-v",
            "/data/in:/in:ro,z",
            *ENV_ARGS,
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-tty-interactive",
        spec(PODMAN_ROOTLESS, tty=True, interactive=True, pull=None, env_names=()),
        [
            *head("/usr/bin/podman"),
            "-i",
            "-t",
            *KEEP_ID_ARGS,
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-interactive-only",
        spec(DOCKER, interactive=True, pull=None, user=None, env_names=()),
        [
            *head("/usr/bin/docker"),
            "-i",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-tty-only",
        spec(DOCKER, tty=True, pull="never", env_names=()),
        [
            *head("/usr/bin/docker"),
            "-t",
            "--user",
            "1000:1000",
            *HOME_ARGS,
            "--pull=never",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-pull-newer",
        spec(PODMAN_ROOTLESS, pull="newer", env_names=()),
        [
            *head("/usr/bin/podman"),
            *KEEP_ID_ARGS,
            "--pull=newer",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-pull-newer-is-always",
        spec(DOCKER, pull="newer", env_names=()),
        [
            *head("/usr/bin/docker"),
            "--user",
            "1000:1000",
            *HOME_ARGS,
            "--pull=always",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-options-and-workdir",
        spec(
            PODMAN_ROOTLESS,
            workdir="/runner",
            options=("--network=host", "--cap-add", "NET_ADMIN"),
            mounts=(Mount.same_path("/work/proj"), Mount("/srv/data", "/runner", False)),
            pull="always",
            env_names=("A",),
        ),
        [
            *head("/usr/bin/podman"),
            *KEEP_ID_ARGS,
            "--pull=always",
            "-w",
            "/runner",
            "-v",
            "/work/proj:/work/proj",
            "-v",
            "/srv/data:/runner",
            "-e",
            "A",
            "--network=host",
            "--cap-add",
            "NET_ADMIN",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-options-and-ro-volume",
        spec(
            DOCKER,
            options=("--network=none",),
            mounts=(Mount.same_path("/work/proj"), Mount("/opt/x", "/x", read_only=True)),
            env_names=(),
        ),
        [
            *head("/usr/bin/docker"),
            "--user",
            "1000:1000",
            *HOME_ARGS,
            "--pull=missing",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "-v",
            "/opt/x:/x:ro",
            "--network=none",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-container-network-host",
        spec(PODMAN_ROOTLESS, network="host", env_names=()),
        [
            *head("/usr/bin/podman"),
            *KEEP_ID_ARGS,
            "--pull=missing",
            "--network=host",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "podman-container-network-namespace",
        spec(PODMAN_ROOT, network="ns:/run/netns/lab", env_names=(), user=None),
        [
            *head("/usr/bin/podman"),
            "--pull=missing",
            "--network=ns:/run/netns/lab",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "docker-container-network-named",
        spec(DOCKER, network="lab-net", env_names=()),
        [
            *head("/usr/bin/docker"),
            "--user",
            "1000:1000",
            *HOME_ARGS,
            "--pull=missing",
            "--network=lab-net",
            "-w",
            "/work/proj",
            "-v",
            "/work/proj:/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
    (
        "no-labels-no-mounts",
        spec(PODMAN_ROOT, labels={}, mounts=(), env_names=(), user=None, pull=None),
        [
            "/usr/bin/podman",
            "run",
            "--rm",
            "--name",
            "containerrunner_job1",
            "-w",
            "/work/proj",
            "localhost/ee:1",
            *CMD,
        ],
    ),
]


@pytest.mark.parametrize(("case", "the_spec", "expected"), CASES, ids=[c[0] for c in CASES])
def test_golden_argv(case: str, the_spec: ContainerSpec, expected: list[str]) -> None:
    assert build_run_argv(the_spec, CMD) == expected


def test_command_is_last_and_unchanged() -> None:
    cmd = ["bash", "-c", "echo '$HOME' && exit 3"]
    argv = build_run_argv(spec(DOCKER), cmd)
    assert argv[-len(cmd) - 1 :] == ["localhost/ee:1", *cmd]


@pytest.mark.parametrize("engine", [PODMAN_ROOTLESS, DOCKER])
def test_env_is_passed_by_name_only(engine: Engine) -> None:
    argv = build_run_argv(spec(engine, env_names=("TOKEN", "B")), ["true"])
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    # The one value on the command line is the fixed HOME of a non-root caller, not a secret.
    assert pairs == [HOME_ARGS[1], "TOKEN", "B"]
    assert not any("=" in p for p in pairs[1:])
    assert "--env-file" not in argv


@pytest.mark.parametrize("bad", ["A=1", ""])
def test_env_name_with_value_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="environment variable name"):
        build_run_argv(spec(PODMAN_ROOTLESS, env_names=(bad,)), ["true"])


def test_docker_as_root_keeps_the_image_home() -> None:
    argv = build_run_argv(spec(DOCKER, user=(0, 0)), ["true"])
    i = argv.index("--user")
    assert argv[i : i + 3] == ["--user", "0:0", "--pull=missing"]
    assert not any(a.startswith("HOME=") for a in argv)


@pytest.mark.parametrize("engine", [PODMAN_ROOTLESS, DOCKER])
def test_a_home_of_the_job_comes_after_the_default_home(engine: Engine) -> None:
    """Both engines take the last `-e HOME`: a job's own HOME wins over CONTAINER_HOME."""
    argv = build_run_argv(spec(engine, env_names=("HOME",)), ["true"])
    values = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    assert values == [HOME_ARGS[1], "HOME"]


def test_podman_as_root_rootful_has_no_user_flags() -> None:
    argv = build_run_argv(spec(PODMAN_ROOT, user=(0, 0)), ["true"])
    assert "--userns=keep-id" not in argv
    assert "-e" not in argv[: argv.index("-w")]


def test_labels_are_sorted_whatever_the_mapping_order() -> None:
    a = build_run_argv(spec(DOCKER, labels={"b": "2", "a": "1"}), ["true"])
    b = build_run_argv(spec(DOCKER, labels={"a": "1", "b": "2"}), ["true"])
    assert a == b
    assert a[5:9] == ["--label", "a=1", "--label", "b=2"]


# ansible-runner's /runner layout over the same-path mounts (isolation.mounts.runner_layout_mounts
# with private data dir /work/pdd and artifact_dir /work/art), as normalise_mounts orders them.
LAYOUT_MOUNTS = normalise_mounts(
    [
        Mount.same_path("/work/pdd/project"),
        Mount("/work/art", "/runner/artifacts"),
        Mount("/work/pdd/env", "/runner/env", read_only=True, secret=True),
        Mount("/work/pdd", "/runner"),
    ]
)
LAYOUT_V = [
    "-v", "/work/pdd:/runner",
    "-v", "/work/art:/runner/artifacts",
    "-v", "/work/pdd/env:/runner/env:ro",
    "-v", "/work/pdd/project:/work/pdd/project",
]  # fmt: skip
LAYOUT_V_SELINUX = [
    "-v", "/work/pdd:/runner:z",
    "-v", "/work/art:/runner/artifacts:z",
    "-v", "/work/pdd/env:/runner/env:ro,z",
    "-v", "/work/pdd/project:/work/pdd/project:z",
]  # fmt: skip


@pytest.mark.parametrize(
    ("engine", "user_args", "volumes"),
    [
        (PODMAN_ROOTLESS, KEEP_ID_ARGS, LAYOUT_V),
        (DOCKER, ["--user", "1000:1000", *HOME_ARGS], LAYOUT_V),
        (PODMAN_SELINUX, KEEP_ID_ARGS, LAYOUT_V_SELINUX),
        (DOCKER_SELINUX, ["--user", "1000:1000", *HOME_ARGS], LAYOUT_V_SELINUX),
    ],
    ids=["podman", "docker", "podman-selinux", "docker-selinux"],
)
def test_golden_argv_runner_layout(
    engine: Engine, user_args: list[str], volumes: list[str]
) -> None:
    """The private data dir at /runner before its read-only env/ and the artifact dir; the
    same-path mounts stay."""
    the_spec = spec(engine, workdir="/work/pdd/project", mounts=LAYOUT_MOUNTS, env_names=())
    assert build_run_argv(the_spec, CMD) == [
        *head(engine.executable),
        *user_args,
        "--pull=missing",
        "-w",
        "/work/pdd/project",
        *volumes,
        "localhost/ee:1",
        *CMD,
    ]


def test_docker_refuses_a_network_namespace_path() -> None:
    with pytest.raises(ConfigurationError, match=r"container_network 'ns:/run/netns/lab'.*podman"):
        build_run_argv(spec(DOCKER, network="ns:/run/netns/lab"), ["true"])
