"""The argument parser: ansible-runner's flags for run/start/stop/is-alive, plus exec, shell
and images. Usage errors raise `UsageError` (one line, exit 2) instead of printing the usage."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from typing import Any, NoReturn

from containerrunner.config.execution import ENGINE_CHOICES, PULL_POLICIES
from containerrunner.version import __version__

PROG = "containerrunner"


class UsageError(Exception):
    """The command line is wrong; `prog` names the (sub)command for the help hint."""

    def __init__(self, message: str, prog: str = PROG) -> None:
        super().__init__(message)
        self.prog = prog


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (raised, printed by main)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


MAIN_EPILOG = """\
examples:
  containerrunner run demo -p site.yml                    # playbook on the host
  containerrunner run demo -p site.yml --engine podman    # ... in the EE image with podman
  containerrunner run demo -m ping --hosts all --engine docker
  containerrunner start demo -p site.yml -i nightly && containerrunner stop demo
  containerrunner exec -- ansible-vault view secrets.yml  # any command in the EE
  containerrunner shell --engine docker                   # a shell in the EE
  containerrunner images build && containerrunner images list
  containerrunner transmit demo -p site.yml | containerrunner worker | containerrunner process demo
  ID=$(containerrunner session start) && containerrunner exec --session "$ID" -- ansible --version

`containerrunner COMMAND --help` shows each command's options.
"""

RUN_EPILOG = """\
PRIVATE_DATA_DIR is ansible-runner's layout: project/ (playbooks), inventory/, env/
(extravars, passwords, envvars, settings, cmdline, ssh_key); artifacts go to artifacts/<ident>/.
The exit code is the job's return code. With --engine or --container-image given more than
once (or --max-parallel), `run` runs a group: one job per engine x image, then a table of
their outcomes; it exits 0 when every job succeeded, else with the worst job's code.

examples:
  containerrunner run demo -p site.yml
  containerrunner run demo -p site.yml --engine podman --container-image localhost/network-ee
  containerrunner run demo -p site.yml --limit web1 --tags deploy -vv
  containerrunner run demo -m ansible.builtin.ping --hosts all
  containerrunner run demo -m command -a 'uptime' --hosts web --engine docker
  containerrunner run demo -r myrole --role-vars 'port=8080 debug=true' --hosts db
  containerrunner run demo -p site.yml -j | jq -r .event            # events as JSON lines
  containerrunner run demo -p site.yml --engine podman --engine docker   # a group: a table
  containerrunner run demo -p site.yml --engine podman --image A --image B --max-parallel 1
"""

START_EPILOG = """\
`start` takes the same options as `run`, runs the job in the background (a daemon whose pid is
written to PRIVATE_DATA_DIR/pid) and returns once the job has started; output goes to
PRIVATE_DATA_DIR/artifacts/<ident>/ and errors to PRIVATE_DATA_DIR/daemon.log.

examples:
  containerrunner start demo -p site.yml --engine podman -i nightly
  containerrunner is-alive demo && echo running
  containerrunner stop demo
"""

STOP_EPILOG = """\
Stops the job that `containerrunner start` runs for PRIVATE_DATA_DIR: SIGTERM to the daemon
(which cancels the job), then removes the job's containers and waits for the daemon to end.
Exits 0 when it stopped a job, 1 when no job was running.

example:
  containerrunner stop demo
"""

IS_ALIVE_EPILOG = """\
Exits 0 when the daemon in PRIVATE_DATA_DIR/pid is alive, 1 otherwise.

example:
  containerrunner is-alive demo && echo running
"""

EXEC_EPILOG = """\
The current directory is mounted at the same path (and is the working directory), and so are
the files named on the command line (inventories, keys, vault password files). stdin, stdout
and stderr are passed through; there is a TTY when your terminal is one. The exit code is the
command's. With --password or --passwords-file the command runs under a pty and prompts that
match a REGEX are answered (stdin is then not read).

examples:
  containerrunner exec -- ansible --version
  containerrunner exec --engine docker -- ansible-playbook -i hosts site.yml
  containerrunner exec -e PAGER=cat -- ansible-vault view secrets.yml   # type the password
  containerrunner exec --password 'Vault password.*:=s3cret' -- ansible-vault view s.yml
  containerrunner exec -e ANSIBLE_FORCE_COLOR=1 -e HOME -- ansible-config dump
  containerrunner exec --passwords-file env/passwords -- ansible-playbook -k site.yml
  echo 'print(1)' | containerrunner exec -- python3 -
  containerrunner exec --container-network none -- ansible-doc -l   # rootless podman, no tun
"""

SHELL_EPILOG = """\
Opens bash (or sh where the image has no bash) in the EE with the current directory mounted.

examples:
  containerrunner shell
  containerrunner shell --engine docker --image localhost/network-ee:latest
"""

STREAM_EPILOG = """\
The job stream is ansible-runner 2.4.3's (newline-delimited JSON, zips as base64; either end
may be ansible-runner). `transmit` takes run's options; `worker` runs what it reads on stdin;
`process` writes the artifacts dir. The `starting` line carries no environment, and secrets sent
by `transmit` are not echoed back (docs/streaming.md).

examples:
  containerrunner transmit demo -p site.yml | containerrunner worker | containerrunner process demo
  containerrunner transmit demo -p site.yml --engine podman > job.stream
  ssh node containerrunner worker < job.stream | containerrunner process demo -i nightly
"""

SESSION_EPILOG = """\
A session keeps one container of the EE running, so calls in it pay the image check and the
container start once. `session start` prints the session's ID; the session lives until
`session stop ID` (its holder process is a daemon; if that is killed, the next containerrunner
job removes the container). Its mounts are fixed when it starts: a call that needs another
path is refused with the path named.

examples:
  ID=$(containerrunner session start --engine podman --mount "$PWD")
  containerrunner run "$PWD/demo" -p site.yml --session "$ID"
  containerrunner exec --session "$ID" -- ansible-doc ansible.builtin.copy
  containerrunner session list
  containerrunner session stop "$ID"
"""

IMAGES_EPILOG = """\
examples:
  containerrunner images build                     # base, EE and network EE; podman + docker
  containerrunner images build --engine podman --force
  containerrunner images build --base-image docker.io/library/python:3.11-slim
  containerrunner images build --verify            # build twice from clean, compare the IDs
  containerrunner images lock                      # relock from today's mirror and PyPI
  containerrunner images list
  containerrunner images inspect localhost/network-ee:latest
"""

IMAGES_BUILD_EPILOG = """\
Runs the build-images script shipped in the package (bash, podman, and mmdebstrap for the
offline Debian base; docker gets the same images through `podman save | docker load`). An image
whose recipe is unchanged is not rebuilt. Every input is locked in the recipes (Debian package
versions, Python wheels with their sha256); a Debian mirror that now serves another version
fails the build, naming the package, unless --relock. The build says whether it produced the
image IDs recorded in the recipes (expected-ids).

examples:
  containerrunner images build
  containerrunner images build --engine podman --force
  containerrunner images build --base-image docker.io/library/python:3.11-slim
  containerrunner images build --verify
"""

IMAGES_LOCK_EPILOG = """\
Regenerates the locks in the packaged recipes (base/packages.lock, ee/requirements*.lock,
network-ee/*.lock) from today's Debian mirror and PyPI, then builds from them
(`images build --relock`). Commit the new locks, and record their image IDs with
`images build --verify`.

example:
  containerrunner images lock --engine podman
"""

IMAGES_INSPECT_EPILOG = """\
Prints the image's labels (recipe hash, ansible-core, collections, lock digests) and each lock
it was built from: every Debian package and Python package inside, with its version (and
sha256). The first engine that has the image answers (or only --engine E).

example:
  containerrunner images inspect localhost/containerrunner-ee:latest
"""

IMAGES_LIST_EPILOG = """\
Lists containerrunner-base, containerrunner-ee and network-ee in each engine with the image ID
and whether the image was built from the current recipe (`current`), from an older one
(`stale`: rebuild with `containerrunner images build`) or elsewhere (`-`).

example:
  containerrunner images list
"""


def _add_stream_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="give up when the stream on stdin is silent this long",
    )
    _add_debug(parser, False)


CLEANUP_EPILOG = """\
Removes this user's containerrunner containers whose owner process on this host is gone
(killed with SIGKILL, or a machine that lost power), and the temp dirs such owners left (with
their ssh-agents and engine API services); prints one line per thing removed. Every job start
does the same in the background; this is for when no job runs. With --scheduler, removes
instead the jobs (pods, services and their secrets) that dead owners of this host left on
that scheduler.

examples:
  containerrunner cleanup
  containerrunner cleanup --scheduler kubernetes --namespace jobs
"""


def _add_debug(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the engine command line and full tracebacks",
    )


def positive_int(text: str) -> int:
    """argparse `type` for a count of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _add_job_args(parser: argparse.ArgumentParser, full: bool) -> None:
    """ansible-runner's options. `full=False` (stop, is-alive): accepted, not shown."""

    def hide(text: str) -> str:
        return text if full else argparse.SUPPRESS

    parser.add_argument(
        "private_data_dir",
        metavar="PRIVATE_DATA_DIR",
        help="ansible-runner's private data dir (project/, inventory/, env/, artifacts/)",
    )
    what = parser.add_argument_group("what to run" if full else None)
    exclusive = what.add_mutually_exclusive_group()
    exclusive.add_argument(
        "-p", "--playbook", help=hide("a playbook in PRIVATE_DATA_DIR/project (or a path)")
    )
    exclusive.add_argument("-m", "--module", help=hide("an Ansible module, run ad hoc"))
    exclusive.add_argument("-r", "--role", help=hide("a role, run in a one-play playbook"))
    what.add_argument(
        "-a", "--args", dest="module_args", metavar="ARGS", help=hide("the module's arguments")
    )
    what.add_argument(
        "--role-vars",
        metavar="'K=V ...'",
        help=hide("variables for the role: 'key1=value1 key2=value2'"),
    )
    what.add_argument(
        "--roles-path", metavar="PATH", help=hide("where to find the role (colon-separated)")
    )
    what.add_argument(
        "--role-skip-facts", action="store_true", default=None, help=hide("no fact gathering")
    )
    what.add_argument("-b", "--binary", help=hide("the Ansible executable to run"))
    what.add_argument("--project-dir", help=hide("default: PRIVATE_DATA_DIR/project"))

    ansible = parser.add_argument_group("Ansible options" if full else None)
    ansible.add_argument("--hosts", help=hide("host pattern for -m and -r"))
    ansible.add_argument("--limit", help=hide("further limit the hosts (ansible --limit)"))
    ansible.add_argument("--tags", help=hide("only tasks with these tags (comma-separated)"))
    ansible.add_argument("--skip-tags", help=hide("skip tasks with these tags"))
    ansible.add_argument("--forks", type=int, help=hide("parallel processes (ansible --forks)"))
    ansible.add_argument(
        "--inventory", help=hide("inventory path (default: PRIVATE_DATA_DIR/inventory)")
    )
    ansible.add_argument(
        "--cmdline", metavar="ARGS", help=hide("more ansible-playbook arguments, one string")
    )
    ansible.add_argument(
        "-v",
        dest="verbosity",
        action="count",
        default=None,
        help=hide("more verbose: -v ... -vvvvv"),
    )

    runner = parser.add_argument_group("run options" if full else None)
    runner.add_argument(
        "-i", "--ident", help="the job's identifier (artifacts/<ident>; default: a new uuid)"
    )
    runner.add_argument(
        "--rotate-artifacts",
        type=int,
        metavar="N",
        help=hide("keep only the N newest artifact dirs (0: keep all)"),
    )
    runner.add_argument("--artifact-dir", help=hide("default: PRIVATE_DATA_DIR/artifacts"))
    runner.add_argument(
        "-j", "--json", action="store_true", help=hide("print each event as one line of JSON")
    )
    runner.add_argument(
        "-q", "--quiet", action="store_true", help=hide("no live view: plain result lines only")
    )
    runner.add_argument(
        "--show-output",
        action="store_true",
        help=hide("print each result's output (stdout: per host, per command) under its line"),
    )
    runner.add_argument(
        "--omit-event-data", action="store_true", default=None, help=hide("events without data")
    )
    runner.add_argument(
        "--only-failed-event-data",
        action="store_true",
        default=None,
        help=hide("event data only for failed tasks"),
    )
    runner.add_argument(
        "--junit",
        metavar="PATH",
        help=hide("run: copy the JUnit report (artifacts/<ident>/junit.xml) to PATH"),
    )
    runner.add_argument("--timeout", type=float, metavar="SECONDS", help=hide("job time limit"))
    runner.add_argument(
        "--idle-timeout", type=float, metavar="SECONDS", help=hide("limit on time without output")
    )
    runner.add_argument(
        "--start-timeout",
        type=float,
        metavar="SECONDS",
        help=hide("limit on the image check and container start; the job limits count after it"),
    )
    runner.add_argument(
        "--termination-grace",
        type=float,
        metavar="SECONDS",
        help=hide("seconds between SIGTERM and SIGKILL when the job is stopped (default 5)"),
    )

    container = parser.add_argument_group("container options" if full else None)
    container.add_argument(
        "--process-isolation",
        action="store_true",
        default=None,
        help=hide("run in a container of the EE image"),
    )
    container.add_argument(
        "--process-isolation-executable",
        metavar="ENGINE",
        help=hide("podman, docker or auto (the first that works)"),
    )
    container.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        action="append",
        help=hide(
            "run in a container with this engine (implies --process-isolation); "
            "run: repeat it to run the job with each engine (a group)"
        ),
    )
    container.add_argument(
        "--container-image",
        "--image",
        dest="container_image",
        metavar="IMAGE",
        action="append",
        help=hide(
            "the EE image (default: the project's); run: repeat it to run the job in each "
            "image (a group: every engine x every image)"
        ),
    )
    container.add_argument(
        "--max-parallel",
        type=positive_int,
        metavar="N",
        help=hide("run: at most N jobs of a group at once (default: all); runs a group"),
    )
    container.add_argument(
        "--container-volume-mount",
        dest="container_volume_mounts",
        action="append",
        metavar="SRC:DST[:OPTS]",
        help=hide("an extra bind mount (repeatable)"),
    )
    container.add_argument(
        "--container-option",
        dest="container_options",
        action="append",
        metavar="OPTION",
        help=hide("an extra engine `run` option (repeatable), e.g. --container-option=--net=host"),
    )
    container.add_argument(
        "--container-network",
        metavar="NETWORK",
        help=hide("the container's network: host, none, a named network (see docs/network.md)"),
    )
    container.add_argument(
        "--engine-url",
        metavar="URL",
        help=hide(
            "the engine's endpoint: unix:///path.sock, tcp://HOST:PORT or "
            "ssh://[USER@]HOST[:PORT][/path] (default: DOCKER_HOST / CONTAINER_HOST, else the "
            "local engine); a remote one streams the job's files (docs/streaming.md)"
        ),
    )
    container.add_argument(
        "--pull", choices=PULL_POLICIES, help=hide("image pull policy (default: missing)")
    )
    container.add_argument(
        "--scheduler",
        choices=("local", "swarm", "kubernetes"),
        help=hide(
            "run: where the job runs: local (this machine's engine, the default), swarm (a "
            "Docker Swarm service), kubernetes (see docs/scale-out.md)"
        ),
    )
    container.add_argument(
        "--scheduler-option",
        dest="scheduler_options",
        action="append",
        metavar="KEY=VALUE",
        help=hide(
            "run: a scheduler option (repeatable), e.g. constraints=node.role==worker, "
            "engine_url=tcp://manager:2375, memory_limit=512M (see docs/scale-out.md)"
        ),
    )
    container.add_argument(
        "--session",
        metavar="ID",
        help=hide(
            "exec the job in the warm session ID (`containerrunner session start`; an ident "
            "or a unique prefix), which must mount PRIVATE_DATA_DIR"
        ),
    )
    _add_debug(parser, argparse.SUPPRESS)


def _add_exec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image", help="the EE image (default: localhost/containerrunner-ee:latest)"
    )
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="auto", help="default: auto")
    parser.add_argument(
        "--pull", choices=PULL_POLICIES, help="image pull policy (default: missing)"
    )
    parser.add_argument(
        "--container-network",
        metavar="NETWORK",
        help="the container's network: host, none, a named network (default: the engine's; "
        "rootless podman without /dev/net/tun needs none or host, see docs/nonroot.md)",
    )
    parser.add_argument(
        "-e",
        "--env",
        action="append",
        metavar="NAME[=VALUE]",
        help="set an environment variable in the container (repeatable); NAME alone passes "
        "this shell's value",
    )
    parser.add_argument(
        "--container-volume-mount",
        dest="container_volume_mounts",
        action="append",
        metavar="SRC:DST[:OPTS]",
        help="an extra bind mount (repeatable)",
    )
    parser.add_argument(
        "--container-option",
        dest="container_options",
        action="append",
        metavar="OPTION",
        help="an extra engine `run` option (repeatable)",
    )
    parser.add_argument(
        "--session",
        metavar="ID",
        help="exec in the warm session ID (`containerrunner session start`), which must "
        "mount the current directory",
    )
    _add_debug(parser, argparse.SUPPRESS)


def _add_session_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="session_command", metavar="ACTION", parser_class=CliParser)

    def add(name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
        child = sub.add_parser(
            name, help=help_text, description=help_text, epilog=epilog, formatter_class=_Formatter
        )
        _add_debug(child, argparse.SUPPRESS)
        return child

    start = add("start", "start a warm session in the background; prints its ID", SESSION_EPILOG)
    start.add_argument(
        "--image", help="the EE image (default: localhost/containerrunner-ee:latest)"
    )
    start.add_argument("--engine", choices=ENGINE_CHOICES, default="auto", help="default: auto")
    start.add_argument(
        "--mount",
        dest="mounts",
        action="append",
        metavar="SRC[:DST[:OPTS]]",
        help="a dir the session's calls use (repeatable; default: the current directory); "
        "fixed when it starts",
    )
    start.add_argument("--pull", choices=PULL_POLICIES, help="image pull policy (default: missing)")
    start.add_argument("--container-network", metavar="NETWORK", help="the container's network")
    start.add_argument(
        "--container-option",
        dest="container_options",
        action="append",
        metavar="OPTION",
        help="an extra engine `run` option (repeatable)",
    )
    start.add_argument(
        "--start-timeout", type=float, metavar="SECONDS", help="limit on the container start"
    )
    start.add_argument("-i", "--ident", help="the session's ID (default: a new uuid)")
    start.add_argument(
        "-j",
        "--json",
        action="store_true",
        help='the pull\'s steps as JSON lines, then the ID as one ({"event": '
        '"containerrunner_session_started", ...})',
    )
    start.add_argument(
        "-q", "--quiet", action="store_true", help="no live pull view: plain lines on stderr"
    )
    stop = add("stop", "stop a session: its container is removed", SESSION_EPILOG)
    stop.add_argument("session_id", metavar="ID", help="the session's ID or a unique prefix")
    listing = add("list", "list the running sessions of this user", SESSION_EPILOG)
    listing.add_argument("--json", action="store_true", help="one JSON object per session")


def build_parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        description="Run Ansible and any command on the host or in an execution-environment "
        "container image (podman or docker).",
        epilog=MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_debug(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)

    def add(name: str, help_text: str, epilog: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=_Formatter,
            **kw,
        )

    _add_job_args(add("run", "run a playbook, module or role and wait for it", RUN_EPILOG), True)
    _add_job_args(add("start", "run a job in the background (daemon)", START_EPILOG), True)
    # stop and is-alive accept run's options (as ansible-runner does) without showing them.
    short_usage = "%(prog)s [-h] [-i IDENT] [--debug] PRIVATE_DATA_DIR"
    stop = add("stop", "stop a job started with `start`", STOP_EPILOG, usage=short_usage)
    _add_job_args(stop, False)
    alive = add(
        "is-alive", "exit 0 if a started job still runs", IS_ALIVE_EPILOG, usage=short_usage
    )
    _add_job_args(alive, False)

    exec_parser = add("exec", "run any command in the EE image", EXEC_EPILOG)
    _add_exec_args(exec_parser)
    exec_parser.add_argument(
        "--password",
        dest="passwords",
        action="append",
        metavar="REGEX=ANSWER",
        help="answer prompts matching REGEX (repeatable; runs under a pty)",
    )
    exec_parser.add_argument(
        "--passwords-file",
        metavar="FILE",
        help="YAML or JSON mapping of REGEX: ANSWER (like env/passwords)",
    )
    exec_parser.add_argument(
        "cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS ...]", help="the command to run"
    )
    _add_exec_args(add("shell", "open an interactive shell in the EE image", SHELL_EPILOG))

    _add_job_args(add("transmit", "write a job stream (stdout) for a worker", STREAM_EPILOG), True)
    worker = add("worker", "run a job stream read on stdin; stream back the result", STREAM_EPILOG)
    worker.add_argument(
        "--private-data-dir",
        metavar="DIR",
        help="unpack the job here and keep it (default: a temporary dir, removed)",
    )
    _add_stream_args(worker)
    processing = add("process", "rebuild the artifacts from a worker's stream", STREAM_EPILOG)
    processing.add_argument(
        "private_data_dir",
        metavar="PRIVATE_DATA_DIR",
        help="the artifacts go to PRIVATE_DATA_DIR/artifacts/<ident> (or ./artifacts)",
    )
    processing.add_argument("-i", "--ident", help="the job's ident (its artifacts dir name)")
    processing.add_argument("--artifact-dir", metavar="DIR", help="put the artifacts here")
    processing.add_argument(
        "-q", "--quiet", action="store_true", help="do not print the events' stdout"
    )
    _add_stream_args(processing)
    _add_session_args(add("session", "warm EE sessions for scripts", SESSION_EPILOG))

    images = add("images", "build, lock, list or inspect the project's EE images", IMAGES_EPILOG)
    images_sub = images.add_subparsers(
        dest="images_command", metavar="ACTION", parser_class=CliParser
    )

    def action(name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
        return images_sub.add_parser(
            name, help=help_text, description=help_text, epilog=epilog, formatter_class=_Formatter
        )

    def target_engines(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--engine",
            choices=("podman", "docker", "both"),
            default="both",
            help="which engines get the images (default: both)",
        )

    build = action("build", "build the images from the packaged recipes", IMAGES_BUILD_EPILOG)
    build.add_argument("--base-image", metavar="IMAGE", help="build the EE on IMAGE")
    target_engines(build)
    build.add_argument("--force", action="store_true", help="rebuild even when current")
    build.add_argument(
        "--relock", action="store_true", help="regenerate the locks, then build from them"
    )
    build.add_argument(
        "--verify",
        action="store_true",
        help="build twice from clean in private podman stores; fail naming the first differing "
        "layer if the image IDs differ, else record them in the recipes' expected-ids",
    )
    _add_debug(build, argparse.SUPPRESS)
    lock = action("lock", "regenerate the image locks, then build from them", IMAGES_LOCK_EPILOG)
    target_engines(lock)
    lock.set_defaults(base_image=None, force=False, relock=True, verify=False)
    _add_debug(lock, argparse.SUPPRESS)
    listing = action(
        "list", "list the images per engine, with ID and recipe state", IMAGES_LIST_EPILOG
    )
    listing.add_argument(
        "--engine", choices=ENGINE_CHOICES, default="auto", help="auto: every engine that works"
    )
    _add_debug(listing, argparse.SUPPRESS)
    inspect = action(
        "inspect", "print an image's labels and the locks it was built from", IMAGES_INSPECT_EPILOG
    )
    inspect.add_argument("image", metavar="IMAGE", help="e.g. localhost/network-ee:latest")
    inspect.add_argument(
        "--engine", choices=ENGINE_CHOICES, default="auto", help="auto: the first that has it"
    )
    _add_debug(inspect, argparse.SUPPRESS)
    cleanup = add("cleanup", "remove what dead jobs left (containers, temp dirs)", CLEANUP_EPILOG)
    cleanup.add_argument(
        "--engine", choices=ENGINE_CHOICES, default="auto", help="auto: every engine that works"
    )
    cleanup.add_argument(
        "--scheduler",
        choices=("swarm", "kubernetes"),
        help="reap the jobs of dead owners on this scheduler instead",
    )
    cleanup.add_argument(
        "--namespace", help="kubernetes: the namespace (default: default)", default=None
    )
    _add_debug(cleanup, False)
    return parser


# Options whose value often starts with "-" (`--container-option --net=host`,
# `--cmdline --check`): argparse would take the value for an option, so it is glued on.
DASH_VALUE_OPTIONS = frozenset({"--container-option", "--cmdline", "-a", "--args"})


def _glue_dash_values(argv: Sequence[str]) -> list[str]:
    items = list(argv)
    command = next((item for item in items if not item.startswith("-")), None)
    if command not in ("run", "start", "stop", "is-alive"):
        return items
    out: list[str] = []
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--":
            out += items[i:]
            break
        following = items[i + 1] if i + 1 < len(items) else None
        if item in DASH_VALUE_OPTIONS and following and following.startswith("-"):
            flag = item if item.startswith("--") else "--args"
            out.append(f"{flag}={following}")
            i += 2
            continue
        out.append(item)
        i += 1
    return out


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(_glue_dash_values(argv))
    if args.command is None:
        raise UsageError(
            "a command is required: run, start, stop, is-alive, exec, shell, session, images"
        )
    if args.command == "session" and args.session_command is None:
        raise UsageError("session needs an action: start, stop or list", f"{PROG} session")
    if args.command == "images" and args.images_command is None:
        raise UsageError("images needs an action: build, lock, list or inspect", f"{PROG} images")
    if args.command == "exec":
        cmd = list(args.cmd)
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        if not cmd:
            raise UsageError(
                "exec needs a command: containerrunner exec -- CMD [ARGS ...]", f"{PROG} exec"
            )
        args.cmd = cmd
    return args


def parse_role_vars(text: str) -> dict[str, str]:
    """`'k1=v1 k2="v 2"'` -> {'k1': 'v1', 'k2': 'v 2'} (ansible-runner's --role-vars)."""
    result: dict[str, str] = {}
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--role-vars: cannot split {text!r}: {exc}") from exc
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"--role-vars: expected key=value pairs, got {word!r}")
        result[key] = value
    return result
