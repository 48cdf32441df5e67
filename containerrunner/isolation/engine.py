"""The container engine as a value: which program, and how podman and docker differ.

Every difference between podman and docker that the rest of the code cares about is a property
of `Engine`; nothing else branches on the engine's name.
"""

from __future__ import annotations

import math
import os
import pwd
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from containerrunner.config.execution import ENDPOINT_VARIABLES as ENDPOINT_NAMES
from containerrunner.config.execution import is_remote
from containerrunner.errors import ConfigurationError, EngineError, EngineTimeoutError

EngineName = Literal["podman", "docker"]
ENGINE_NAMES: tuple[EngineName, ...] = ("podman", "docker")

# The exit code of `podman run` and `docker run` when the engine itself failed (not the
# command in the container): no daemon, a lost connection, a bad option.
ENGINE_FAILURE_RC = 125

# The label every container we start carries; the reaper and the tests look for it.
LABEL = "containerrunner"
LABEL_IDENT = "containerrunner.ident"
LABEL_OWNER_PID = "containerrunner.owner-pid"
LABEL_OWNER_HOST = "containerrunner.owner-host"
LABEL_OWNER_UID = "containerrunner.owner-uid"
# where the owner's engine client connected (engine_url, DOCKER_HOST / CONTAINER_HOST; "": the
# engine's default), so that a container on a remote engine names the endpoint it was run at
LABEL_ENDPOINT = "containerrunner.engine-endpoint"


# HOME inside the container when it runs as a non-root caller: Ansible writes ~/.ansible/tmp,
# and the image's HOME for an unknown uid is `/` (docker: unwritable) or the workdir (podman
# keep-id: .ansible would land in the project; its passwd entry gets this home too). The image's
# /tmp is world-writable (1777) and goes away with the container (`--rm`). A HOME in the job's
# own env (`-e HOME`, later on the command line) still wins.
CONTAINER_HOME = "/tmp/containerrunner-home"

INSTALL_HINT = (
    "install podman or docker (on Debian: `apt-get install podman runc` or "
    "`apt-get install docker.io`), or run scripts/setup-engine from the containerrunner "
    "source tree, which installs and configures both"
)


@dataclass(frozen=True)
class Engine:
    """A container engine the project can drive.

    `rootless` is whether the engine runs containers as an unprivileged caller; `selinux`
    whether the host enforces SELinux (so bind mounts need relabelling).
    """

    name: EngineName
    executable: str
    rootless: bool = False
    selinux: bool = False
    #: where the client connects when not where this process's environment says: the value
    #: its endpoint variable (ENDPOINT_VARIABLES) must have, "" for unset; None: inherited.
    #: `run_engine` and the events watcher honour it (the reaper's engine of a dead owner).
    endpoint: str | None = None

    def client_env(self) -> dict[str, str] | None:
        """The environment for this engine's client: None (inherit) unless `endpoint` is
        set, then this process's with the endpoint variable set to it (or removed)."""
        return endpoint_env(self.name, self.endpoint)

    @property
    def where(self) -> str:
        """The endpoint variable's value this engine's client uses ("": the engine's default)."""
        return self.endpoint if self.endpoint is not None else current_endpoint(self.name)

    @property
    def remote(self) -> bool:
        """Whether the client connects to another machine's engine (tcp://, ssh://)."""
        return is_remote(self.where)

    def user_args(self, uid: int, gid: int) -> list[str]:
        """Flags that make files written to mounts belong to the caller (uid, gid).

        A caller that is not root inside the container also gets a writable HOME
        (CONTAINER_HOME) for Ansible's ~/.ansible/tmp.
        """
        home = ["-e", f"HOME={CONTAINER_HOME}"]
        if self.name == "podman":
            # Rootful podman runs the container as root, which is the caller; rootless needs
            # the caller's id mapped to itself inside the user namespace.
            # keep-id's /etc/passwd entry has the workdir as home, and Ansible expands its
            # remote_tmp `~user` from there: .ansible/tmp would land in the project.
            passwd = f"--passwd-entry=$USERNAME:*:$UID:$GID::{CONTAINER_HOME}:/bin/sh"
            return ["--userns=keep-id", passwd, *home] if self.rootless else []
        return ["--user", f"{uid}:{gid}", *(home if uid != 0 else [])]

    def passwd_file(self, uid: int, gid: int, user: str) -> str | None:
        """The /etc/passwd to mount in the container for the caller (uid, gid, login `user`),
        or None when the engine gives the caller an entry itself.

        docker's `--user UID:GID` runs a uid the image does not know, without a passwd entry,
        and OpenSSH's client refuses to start without one (`No user exists for uid N`), so
        ssh connections fail. Rootless podman adds an entry (`--passwd-entry`); root is in
        every image. The file holds root, the caller (home CONTAINER_HOME) and nobody.
        """
        if self.name != "docker" or uid == 0:
            return None
        return (
            "root:x:0:0:root:/root:/bin/sh\n"
            f"{user}:x:{uid}:{gid}:{user}:{CONTAINER_HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )

    def mount_arg(self, source: str, target: str, read_only: bool) -> list[str]:
        """`-v src:dst[:opts]`, with an SELinux label only where SELinux is on."""
        opts: list[str] = []
        if read_only:
            opts.append("ro")
        if self.selinux and not _is_system_dir(source):
            opts.append("z")
        suffix = f":{','.join(opts)}" if opts else ""
        return ["-v", f"{source}:{target}{suffix}"]

    def pull_args(self, policy: str | None) -> list[str]:
        """`--pull=...` for `run`; docker's `run --pull` knows always|missing|never only."""
        if policy is None:
            return []
        if self.name == "docker" and policy == "newer":
            return ["--pull=always"]
        return [f"--pull={policy}"]

    def network_args(self, network: str | None) -> list[str]:
        """`--network=...` for `run` (none: the engine's default network); `ns:/path` (join a
        network namespace by path) is podman's: docker has no such mode."""
        if network is None:
            return []
        if network.startswith("ns:") and self.name != "podman":
            raise ConfigurationError(
                f"container_network {network!r}: joining a network namespace by path works with "
                f"podman only; with {self.name} use host, a named network or container:NAME"
            )
        return [f"--network={network}"]

    def remove_args(self, name: str) -> list[str]:
        """`rm` a container by name, killing it at once if it still runs (no stop grace)."""
        if self.name == "podman":
            # podman's `rm -f` waits the stop timeout (10 s) first; docker's kills at once.
            return ["rm", "--force", "--time", "0", name]
        return ["rm", "--force", name]

    def stop_args(self, name: str, grace: float) -> list[str]:
        """`stop` a container: SIGTERM to its init, SIGKILL after `grace` s (whole seconds,
        rounded up: both engines take an integer)."""
        return ["stop", "--time", str(math.ceil(grace)), name]

    @property
    def removed_event(self) -> str:
        """The name of the event the engine sends when a container is removed."""
        return "destroy" if self.name == "docker" else "remove"

    def command(self, *args: str) -> list[str]:
        return [self.executable, *args]


def login_name(uid: int) -> str:
    """The login name of `uid` on the host (`containerrunner` when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "containerrunner"


def run_engine(
    engine: Engine, args: list[str], timeout: float, stdin_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`<engine> args...` with its output captured (`stdin_text` on its stdin, else none);
    never raises for a non-zero exit.

    Raises EngineError when the engine cannot be started, EngineTimeoutError after `timeout`.
    """
    argv = engine.command(*args)
    try:
        if stdin_text is not None:
            return subprocess.run(
                argv,
                input=stdin_text,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=engine.client_env(),
            )
        return subprocess.run(
            argv,
            env=engine.client_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except OSError as exc:
        raise cannot_start(engine, argv, exc) from exc
    except subprocess.TimeoutExpired as exc:
        raise not_finished(argv, timeout) from exc


def cannot_start(engine: Engine, argv: Sequence[str], exc: OSError) -> EngineError:
    """The error for an engine client that could not be started (`argv`, failing with `exc`):
    the executable missing (with the install hint), or the OS's reason."""
    if isinstance(exc, FileNotFoundError):
        return EngineError(
            f"{engine.name} executable {engine.executable!r} not found; {INSTALL_HINT}"
        )
    return EngineError(f"cannot run `{' '.join(argv)}`: {exc}")


def not_finished(argv: Sequence[str], timeout: float) -> EngineTimeoutError:
    """The error for an engine client (`argv`) stopped after `timeout` s."""
    return EngineTimeoutError(f"`{' '.join(argv)}` did not finish within {timeout:g} s")


def _is_system_dir(path: str) -> bool:
    return path in ("/", "/usr", "/etc", "/var", "/home") or path.startswith(("/usr/", "/etc/"))


def _selinux_enabled() -> bool:
    try:
        with open("/sys/fs/selinux/enforce") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


# `podman info` answers per executable, asked once per process (like _ANSWERED below).
_ROOTLESS: dict[str, bool] = {}


def _plainly_rootful() -> bool:
    """True when podman is certainly rootful without asking it (`podman info` costs a quarter
    of a second, on the critical path of a process's first job): the caller is root in the
    initial user namespace (uid_map the identity over all IDs) and podman is local (no
    CONTAINER_HOST, no `--remote` connection forced by CONTAINERS_CONF settings we can see)."""
    if os.geteuid() != 0 or os.environ.get("CONTAINER_HOST"):
        return False
    try:
        with open("/proc/self/uid_map", encoding="ascii") as uid_map:
            mapping = uid_map.read().split()
    except OSError:
        return False
    if mapping != ["0", "0", "4294967295"]:
        return False
    confs = [os.environ.get("CONTAINERS_CONF", ""), *_SYSTEM_CONTAINERS_CONFS]
    for conf in filter(None, confs):
        try:
            with open(conf, encoding="utf-8", errors="replace") as text:
                if _REMOTE_SETTING.search(text.read()):  # one pass: a line at a time is 2 ms
                    return False
        except OSError:
            continue
    return True


_REMOTE_SETTING = re.compile(r"^[ \t]*remote[ \t]*=[ \t]*true", re.MULTILINE)
_SYSTEM_CONTAINERS_CONFS = (
    "/usr/share/containers/containers.conf",
    "/etc/containers/containers.conf",
    os.path.expanduser("~/.config/containers/containers.conf"),
)


def podman_rootless(executable: str, timeout: float = 20.0) -> bool:
    """Whether this podman runs rootless, as podman itself says (`Host.Security.Rootless`).

    A root caller can still be rootless (inside a user namespace) and a non-root one is not
    always; when `podman info` does not answer, the caller's euid decides. Cached per process.
    """
    if executable in _ROOTLESS:
        return _ROOTLESS[executable]
    if _plainly_rootful():
        _ROOTLESS[executable] = False
        return False
    try:
        proc = subprocess.run(
            [executable, "info", "--format", "{{.Host.Security.Rootless}}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return os.geteuid() != 0
    answer = proc.stdout.strip().lower()
    if proc.returncode != 0 or answer not in ("true", "false"):
        return os.geteuid() != 0
    _ROOTLESS[executable] = answer == "true"
    return _ROOTLESS[executable]


# The variables that point an engine's client at another daemon or service.
ENDPOINT_VARIABLES: dict[EngineName, str] = {
    "podman": ENDPOINT_NAMES["podman"],
    "docker": ENDPOINT_NAMES["docker"],
}
DEFAULT_ENDPOINTS: dict[EngineName, str] = {
    "podman": "the local podman service",
    "docker": "unix:///var/run/docker.sock",
}

# Engines that answered once in this process, with the endpoint they answered at:
# detect_engine() does not probe them again (a probe costs a `version` round trip per job).
# Failures are not remembered.
_ANSWERED: set[tuple[str, str]] = set()
# The client version each answering engine gave in that probe (`known_version` uses it).
_VERSIONS: dict[str, str] = {}


def parse_version(text: str) -> str:
    """`4.3.1` out of `podman version 4.3.1` or `Docker version 28.2.2, build e6534b4`."""
    match = re.search(r"\d+\.\d+[\w.+~-]*", text)
    return match.group(0).rstrip(".,") if match else text.strip()


def engine_endpoint(name: EngineName) -> str:
    """Where `name`'s client connects, as this process's environment says (DOCKER_HOST,
    CONTAINER_HOST; the engine's default otherwise); the child processes inherit it."""
    return os.environ.get(ENDPOINT_VARIABLES[name]) or DEFAULT_ENDPOINTS[name]


def require_answering(engine: Engine) -> None:
    """Raise EngineError naming the engine and where its client connects when
    `<engine> version` fails (a daemon that is down), so that a failed query is not taken
    for a missing image or container."""
    if not engine_answers(engine.executable, timeout=10.0, env=engine.client_env()):
        raise EngineError(
            f"{engine.name} does not answer at {engine.where or DEFAULT_ENDPOINTS[engine.name]} "
            f"(`{engine.executable} version` fails): start its daemon or service, or point "
            f"{ENDPOINT_VARIABLES[engine.name]} at one that runs"
        )


def unreachable_reason(engine: Engine, rc: int) -> str | None:
    """Why a container job whose engine client exited `rc` failed, when the engine itself
    stopped answering (a daemon that died or restarted mid-run): names the engine and where
    its client connects. None when the engine still answers or `rc` is not the client's own
    failure (125)."""
    if rc != ENGINE_FAILURE_RC or engine_answers(
        engine.executable, timeout=10.0, env=engine.client_env()
    ):
        return None
    return (
        f"{engine.name} stopped answering at {engine.where or DEFAULT_ENDPOINTS[engine.name]} "
        "during the job "
        f"(the {engine.name} client exited {rc}; `{engine.executable} version` fails)"
    )


def engine_answers(
    executable: str, timeout: float = 20.0, env: dict[str, str] | None = None
) -> bool:
    """True when `<engine> version` answers (client and server), not just when it is on PATH
    (`env`: the client's environment, e.g. `Engine.client_env()`; None: this process's).

    The client version it prints is kept for `known_version` (no `--version` round trip).
    """
    try:
        proc = subprocess.run(
            [executable, "version", "--format", "{{.Client.Version}}"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if proc.returncode != 0:
        return False
    if proc.stdout.strip():
        _VERSIONS[executable] = parse_version(proc.stdout)
    return True


def known_version(executable: str) -> str | None:
    """The client version `engine_answers` saw for `executable` in this process, if any."""
    return _VERSIONS.get(executable)


def project_containers_conf() -> str | None:
    """The containers.conf that scripts/setup-engine writes where podman's defaults fail."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = os.path.join(base, "containerrunner", "containers.conf")
    return path if os.path.isfile(path) else None


def use_project_containers_conf() -> None:
    """Point podman at the project's containers.conf unless the caller chose one.

    scripts/setup-engine writes that file (runtime runc, ulimits within the hard limits) on
    machines where podman's defaults cannot start a container; every podman this process
    starts then reads it through CONTAINERS_CONF, as the project's scripts do.
    """
    conf = project_containers_conf()
    if conf and "CONTAINERS_CONF" not in os.environ:
        os.environ["CONTAINERS_CONF"] = conf


def endpoint_env(name: EngineName, endpoint: str | None) -> dict[str, str] | None:
    """This process's environment with `name`'s endpoint variable set to `endpoint` ("":
    removed); None (inherit) when `endpoint` is None."""
    if endpoint is None:
        return None
    env = dict(os.environ)
    variable = ENDPOINT_VARIABLES[name]
    env.pop(variable, None)
    if endpoint:
        env[variable] = endpoint
    return env


def current_endpoint(name: EngineName) -> str:
    """The value of `name`'s endpoint variable in this process's environment ("": unset)."""
    return os.environ.get(ENDPOINT_VARIABLES[name], "")


def make_engine(
    name: EngineName, executable: str | None = None, endpoint: str | None = None
) -> Engine:
    """The Engine value for `name` (see `Engine.endpoint`); for podman, whether it is
    rootless comes from `podman info` (once per process, see podman_rootless)."""
    if name == "podman":
        use_project_containers_conf()
    exe = executable or shutil.which(name) or name
    rootless = podman_rootless(exe) if name == "podman" else False
    return Engine(
        name=name, executable=exe, rootless=rootless, selinux=_selinux_enabled(), endpoint=endpoint
    )


def detect_engine(choice: str = "auto", endpoint: str | None = None, probe: bool = True) -> Engine:
    """The engine to use: `podman` or `docker` as asked, or for `auto` podman then docker;
    with `endpoint` (engine_url) the one whose client answers there, bound to it.

    An engine counts only when it answers (`<engine> version` succeeds), so a docker client
    without a daemon is passed over. The first time in a process, podman's `info` (rootless)
    runs alongside that probe, and the probe's client version is kept for provenance.

    `probe=False` (a job's start path) skips that probe for an engine named explicitly: its
    next engine call tells an engine that does not answer from a failed query itself
    (`require_answering`), so the probe would only repeat a round trip. `auto` always probes.
    """
    if choice not in ("auto", *ENGINE_NAMES):
        raise ConfigurationError(
            f"process_isolation_executable must be auto, podman or docker; got {choice!r}"
        )
    candidates: tuple[EngineName, ...] = ENGINE_NAMES if choice == "auto" else (choice,)  # type: ignore[assignment]
    problems: list[str] = []
    for name in candidates:
        exe = shutil.which(name)
        if exe is None:
            problems.append(f"{name}: not found on PATH")
            continue
        if not probe and choice != "auto":
            return make_engine(name, exe, endpoint)
        where = endpoint or engine_endpoint(name)
        if (exe, where) not in _ANSWERED:
            # podman's `info` (rootless or not) is its slowest question: asked meanwhile.
            rootless = None
            if name == "podman" and exe not in _ROOTLESS:
                use_project_containers_conf()
                if endpoint is None and _plainly_rootful():
                    _ROOTLESS[exe] = False
                else:
                    rootless = threading.Thread(target=podman_rootless, args=(exe,), daemon=True)
                    rootless.start()
            answered = engine_answers(exe, env=endpoint_env(name, endpoint))
            if rootless is not None:
                rootless.join()
            if not answered:
                problems.append(
                    f"{name}: `{exe} version` failed at {where} (is the daemon/service running?)"
                )
                continue
        _ANSWERED.add((exe, where))
        return make_engine(name, exe, endpoint)
    if endpoint is not None:  # the engine is there; its daemon or service is not
        raise EngineError(
            f"no container engine answers at engine_url {endpoint!r} ({'; '.join(problems)}): "
            "check the URL and that the daemon or service runs there"
        )
    raise EngineError(f"no working container engine ({'; '.join(problems)}); {INSTALL_HINT}")
