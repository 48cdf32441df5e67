"""The `<engine> run ...` command line for a container job, as a pure function of its spec.

Flag order is fixed (golden tests depend on it):

    <executable> run --rm --name NAME
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
from containerrunner.isolation.types import ContainerSpec


def build_run_argv(spec: ContainerSpec, command: Sequence[str]) -> list[str]:
    """`<engine> run ...` for `spec` running `command`; no I/O, no environment reads."""
    engine = spec.engine
    argv = [engine.executable, "run", "--rm", "--name", spec.name]
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
    for name in spec.env_names:
        if not name or "=" in name:
            raise ConfigurationError(
                f"invalid environment variable name {name!r}: names are passed as `-e NAME`, "
                f"values never go on the command line"
            )
        argv += ["-e", name]
    argv += spec.options
    argv.append(spec.image)
    argv += command
    return argv
