"""The one place where a job is decided to run on the host or in a container."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence

from containerrunner.config.execution import ExecutionOptions
from containerrunner.isolation.argv import build_exec_argv, build_run_argv
from containerrunner.isolation.engine import (
    LABEL,
    LABEL_ENDPOINT,
    LABEL_IDENT,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_UID,
    Engine,
    detect_engine,
)
from containerrunner.isolation.mounts import (
    is_system_dir,
    mounts_from_ansible_args,
    mounts_from_env,
    normalise_mounts,
    parse_volume_mount,
)
from containerrunner.isolation.types import (
    ContainerSpec,
    ExecSpec,
    Invocation,
    Mount,
    StreamSecrets,
)
from containerrunner.procinfo import host_name

CONTAINER_NAME_PREFIX = "containerrunner_"
EXEC_PIDFILE = "exec.pid"  # in a session job's runtime dir: its pid inside the container


def container_name(ident: str) -> str:
    """`containerrunner_<ident>` with every character outside [a-zA-Z0-9_.-] replaced by `_`."""
    return CONTAINER_NAME_PREFIX + re.sub(r"[^a-zA-Z0-9_.-]", "_", ident)


def container_labels(ident: str, endpoint: str = "") -> dict[str, str]:
    """The labels that mark a container as ours, with its ident, owning process and user,
    and (when not the engine's default) the endpoint its owner's client connected to."""
    labels = {
        LABEL: "1",
        LABEL_IDENT: ident,
        LABEL_OWNER_PID: str(os.getpid()),
        LABEL_OWNER_HOST: host_name(),
        LABEL_OWNER_UID: str(os.getuid()),
    }
    if endpoint:
        labels[LABEL_ENDPOINT] = endpoint
    return labels


def containerize(
    command: Sequence[str],
    *,
    options: ExecutionOptions,
    ident: str,
    env: Mapping[str, str],
    extra_mounts: Sequence[Mount] = (),
    tty: bool = False,
    interactive: bool = False,
    engine: Engine | None = None,
    runtime_dir: str | None = None,
    secrets: StreamSecrets | None = None,
) -> Invocation:
    """What to execute for `command`: itself on the host, or `<engine> run ... IMAGE command`.

    `env` is the job's own variables; the child's environment is `os.environ` updated with
    them, and in a container exactly the names in `env` are passed in (by name, never by value
    on the command line). Mounts: cwd (read-write; skipped when it is a system directory such
    as `/` or `/tmp`), the paths the command line and `env` name, `extra_mounts`, and the
    validated `options.container_volume_mounts`, normalised by `normalise_mounts`.

    With `options.session` (a running warm session) it is `<engine> exec ...` in the session's
    container instead, once the session is found to mount all of those (ConfigurationError
    naming the first path it lacks); the exec'd process writes its pid to
    `<runtime_dir>/exec.pid`. A helper CLI the session's preloader serves (ansible-doc,
    ansible-inventory, ansible-config) also gets the preloader's socket: the process layer
    asks the preloader first and falls back to the exec argv (process/preload.py).

    `secrets` (prompt answers, an ssh key) are for a streamed job only (ValueError otherwise):
    they reach the relay in its environment (SECRETS_VARIABLE, which it removes at once) and
    the bootstrap in the payload on the container's stdin.
    """
    cwd = options.cwd
    child_env = {**os.environ, **env}
    if not options.process_isolation:
        return Invocation(
            argv=tuple(command), cwd=cwd, env=child_env, container_name=None, engine=None
        )
    session = options.session
    if session is not None:
        eng = session.engine
    else:
        eng = engine if engine is not None else detect_engine(options.engine, options.engine_url)
    # the engine's client connects where the Engine says (engine_url or the caller's
    # DOCKER_HOST / CONTAINER_HOST): the same endpoint as stop, rm and the reaper use
    child_env = {**(eng.client_env() or os.environ), **env}
    mounts: list[Mount] = []
    if not is_system_dir(cwd):
        mounts.append(Mount.same_path(cwd))
    mounts += mounts_from_ansible_args(command, cwd)
    mounts += mounts_from_env(env, cwd)
    mounts += extra_mounts
    mounts += [parse_volume_mount(v, cwd) for v in options.container_volume_mounts]
    if session is not None:
        if runtime_dir is None:
            raise ValueError("a job exec'd in a session needs its runtime dir (pidfile)")
        needed = normalise_mounts(mounts)
        session.check_mounts(needed)
        exec_spec = ExecSpec(
            engine=eng,
            container=session.container,
            workdir=options.container_workdir or cwd,
            pidfile=os.path.join(runtime_dir, EXEC_PIDFILE),
            env_names=tuple(sorted(env)),
            tty=tty,
            interactive=interactive,
            command=tuple(command),
            preload_socket=session.preload_socket_for(command, tty=tty, interactive=interactive),
        )
        return Invocation(
            argv=tuple(build_exec_argv(exec_spec, command)),
            cwd=cwd,
            env=child_env,
            container_name=None,
            engine=eng,
            exec_spec=exec_spec,
        )
    name = container_name(ident)
    if options.transport == "stream":
        return _streamed(
            command, options, eng, name, ident, env, child_env, mounts, runtime_dir, secrets
        )
    if secrets:
        raise ValueError("prompt answers and an ssh key go into a container by the stream only")
    spec = ContainerSpec(
        engine=eng,
        image=options.container_image,
        name=name,
        workdir=options.container_workdir or cwd,
        mounts=normalise_mounts(mounts),
        env_names=tuple(sorted(env)),
        labels=container_labels(ident, eng.where),
        tty=tty,
        interactive=interactive,
        user=(os.getuid(), os.getgid()),
        options=options.container_options,
        pull=options.pull,
        network=options.container_network,
    )
    return Invocation(
        argv=tuple(build_run_argv(spec, command)),
        cwd=cwd,
        env=child_env,
        container_name=name,
        engine=eng,
    )


RELAY_SPEC = "relay.json"
ADAPTER_SPEC = "scheduler.json"  # the scheduler adapter's spec (no secret values)


def _adapter_argv(
    options: ExecutionOptions,
    bootstrap: list[str],
    ident: str,
    env: Mapping[str, str],
    runtime_dir: str,
    invocation_env: dict[str, str],
) -> list[str]:
    """A scheduler job: the relay runs the scheduler adapter (containerrunner.cluster) in
    place of `<engine> run -i`; its spec names the job's environment variables, whose values
    (and the registry password) reach the adapter in its environment only."""
    from containerrunner.cluster.base import REGISTRY_PASSWORD, AdapterSpec, adapter_argv

    scheduler_options = options.scheduler_options
    assert scheduler_options is not None
    if scheduler_options.registry_auth is not None:
        invocation_env[REGISTRY_PASSWORD] = scheduler_options.registry_auth.password
    spec = AdapterSpec(
        backend=options.scheduler,
        options=scheduler_options.to_json(),
        image=options.container_image,
        command=list(bootstrap),
        labels=container_labels(ident),
        ident=ident,
        env_names=sorted(env),
        report_dir=env.get("CONTAINERRUNNER_ARTIFACT_DIR"),
    )
    path = os.path.join(runtime_dir, ADAPTER_SPEC)
    spec.write(path)
    return adapter_argv(path)  # in the job's runtime dir: what the relay runs (no secret values)


def _streamed(
    command: Sequence[str],
    options: ExecutionOptions,
    eng: Engine,
    name: str,
    ident: str,
    env: Mapping[str, str],
    child_env: Mapping[str, str],
    mounts: Sequence[Mount],
    runtime_dir: str | None,
    secrets: StreamSecrets | None,
) -> Invocation:
    """container_transport='stream': `<engine> run -i IMAGE python3 -c BOOTSTRAP` with no
    bind mounts, behind the relay (streaming/relay.py), which sends the mounts' files on the
    container's stdin and relays its output and events back."""
    from containerrunner.streaming.relay import SECRETS_VARIABLE, RelaySpec, bootstrap_source

    if runtime_dir is None:
        raise ValueError("a streamed container job needs its runtime dir (the relay's spec)")
    cwd = options.cwd
    spec = ContainerSpec(
        engine=eng,
        image=options.container_image,
        name=name,
        workdir="/",
        env_names=tuple(sorted(env)),
        labels=container_labels(ident, eng.where),
        interactive=True,  # the image's user (root in the EE) unpacks the files
        options=options.container_options,
        pull=options.pull,
        network=options.container_network,
    )
    bootstrap = ["python3", "-c", bootstrap_source()]
    engine_argv = build_run_argv(spec, bootstrap)
    invocation_env = dict(child_env)  # the engine client's environment with the job's
    if secrets:  # never in the spec file: the relay takes them out of its environment
        invocation_env[SECRETS_VARIABLE] = json.dumps(
            {"passwords": dict(secrets.passwords), "ssh_key": secrets.ssh_key}
        )
    if options.scheduler != "local":
        engine_argv = _adapter_argv(options, bootstrap, ident, env, runtime_dir, invocation_env)
    relay_spec = RelaySpec(
        engine_argv=engine_argv,
        mounts=[
            {"source": m.source, "target": m.target, "read_only": m.read_only}
            for m in normalise_mounts(list(mounts))
        ],
        command=list(command),
        cwd=options.container_workdir or cwd,
        fifo=env.get("CONTAINERRUNNER_EVENT_FIFO"),
        # docker runs a non-root caller's command as the caller (files written back are
        # theirs); rootful and rootless podman's container root is the caller already
        user=[os.getuid(), os.getgid()] if eng.name == "docker" and os.getuid() != 0 else None,
        own_session=options.scheduler != "local",
    )
    path = os.path.join(runtime_dir, RELAY_SPEC)
    relay_spec.write(path)
    return Invocation(
        argv=(sys.executable, "-m", "containerrunner.streaming.relay", path),
        cwd=cwd,
        env=invocation_env,
        container_name=name,
        engine=eng,
    )
