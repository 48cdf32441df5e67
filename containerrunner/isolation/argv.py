"""The `<engine> run ...` command line for a container job, as a pure function of its spec.

Flag order is fixed (golden tests depend on it):

    <executable> run --rm [-d] --name NAME
        [--label KEY=VALUE ...]     labels, sorted by key
        [-i]                        interactive: keep stdin open
        [-t]                        allocate a TTY
        [user args]                 Engine.user_args(uid, gid), when spec.user is set
        [--pull=POLICY]             Engine.pull_args(spec.pull)
        [--network=NETWORK]         Engine.network_args(spec.network) (container_network)
        -w WORKDIR
        [-v SRC:DST[:OPTS] ...]     Engine.mount_arg, in spec.mounts order
        [-e NAME ...]               names only, in spec.env_names order
        [options ...]               spec.options (the user's container_options), verbatim
        IMAGE
        command ...

Environment values never appear here: `-e NAME` makes the engine copy NAME's value from its own
environment, which the process layer sets (`Invocation.env`).
"""

from __future__ import annotations

from collections.abc import Sequence

from containerrunner.errors import ConfigurationError
from containerrunner.isolation.types import ContainerSpec, ExecSpec

# What an exec'd job runs first, in the container: its pid into the pidfile ($0), then the
# command itself in its place (same pid). The engines start an exec'd process as the leader
# of its own session, so that pid is also its process group.
PIDFILE_WRAPPER = 'echo $$ > "$0" && exec "$@"'


def _env_args(env_names: Sequence[str]) -> list[str]:
    args: list[str] = []
    for name in env_names:
        if not name or "=" in name:
            raise ConfigurationError(
                f"invalid environment variable name {name!r}: names are passed as `-e NAME`, "
                f"values never go on the command line"
            )
        args += ["-e", name]
    return args


def build_exec_argv(spec: ExecSpec, command: Sequence[str]) -> list[str]:
    """`<engine> exec [-i] [-t] -w WORKDIR [-e NAME ...] CONTAINER sh -c WRAPPER PIDFILE
    command ...`; no I/O, no environment reads."""
    argv = [spec.engine.executable, "exec"]
    if spec.interactive:
        argv.append("-i")
    if spec.tty:
        argv.append("-t")
    argv += ["-w", spec.workdir, *_env_args(spec.env_names), spec.container]
    return [*argv, "sh", "-c", PIDFILE_WRAPPER, spec.pidfile, *command]


def build_run_argv(spec: ContainerSpec, command: Sequence[str]) -> list[str]:
    """`<engine> run ...` for `spec` running `command`; no I/O, no environment reads."""
    engine = spec.engine
    argv = [engine.executable, "run", "--rm", *(["-d"] if spec.detach else []), "--name", spec.name]
    for key in sorted(spec.labels):
        argv += ["--label", f"{key}={spec.labels[key]}"]
    if spec.interactive:
        argv.append("-i")
    if spec.tty:
        argv.append("-t")
    if spec.user is not None:
        argv += engine.user_args(*spec.user)
    argv += engine.pull_args(spec.pull)
    argv += engine.network_args(spec.network)
    argv += ["-w", spec.workdir]
    for mount in spec.mounts:
        argv += engine.mount_arg(mount.source, mount.target, mount.read_only)
    argv += _env_args(spec.env_names)
    argv += spec.options
    argv.append(spec.image)
    argv += command
    return argv
