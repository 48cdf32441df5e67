"""Bind mounts for a container job: derived from its command line and env, or given by the user.

Everything is mounted at the same absolute path inside the container as on the host, so paths
in argv, in Ansible's output and in event data stay valid on both sides. The private data dir
is also shown at ansible-runner's `/runner` (`runner_layout_mounts`).

Derivation rules (`mounts_from_ansible_args`, `mounts_from_env`):
- Only the Ansible tools are parsed (ansible, ansible-playbook, ansible-inventory, ansible-doc,
  ansible-config, ansible-console, ansible-pull, ansible-vault); for any other executable
  nothing is derived (its flags mean something else) and only cwd and explicit mounts apply.
- Paths that do not exist are skipped (Ansible reports them); relative paths resolve against
  cwd; `~` is expanded.
- Inventory: a directory is mounted as the directory; a file as the file itself plus its
  sibling `group_vars/` and `host_vars/` (Ansible loads those relative to the inventory file).
  A value with a comma (`-i host1,host2,` or `-i localhost,`) is a host list, never a path.
- Playbooks (positional arguments of ansible-playbook that are files): their directory,
  read-write like cwd, because playbooks reference roles, vars and templates relative to it.
- Key, password and vault files are read-only *secrets* (see `normalise_mounts`).
- A path that is a symlink is mounted as given and at its resolved location too, so the link
  resolves inside the container.
- A system directory as a whole (`/`, `/etc`, `/usr`, `/tmp`, `/usr/lib`, ... see
  `is_system_dir`) is never mounted: a playbook or inventory file directly in one is mounted as
  the file alone; a directory-valued entry naming one is skipped.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import PurePosixPath

from containerrunner.errors import ConfigurationError
from containerrunner.isolation.types import Mount

# -- system directories -------------------------------------------------------------------------

_SYSTEM_TOP = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
    }
)
# Every direct child of these is a system directory too (/usr/lib, /var/tmp, /run/user, ...).
_SYSTEM_PARENTS = frozenset({"/usr", "/usr/local", "/var", "/run"})

# What `container_volume_mounts` refuses as a whole (DESIGN.md section 5); subdirs are fine.
REFUSED_VOLUME_SOURCES = frozenset({"/", "/usr", "/home"})

VOLUME_OPTIONS = ("ro", "rw", "z", "Z")


def is_system_dir(path: str) -> bool:
    """True for `/` and the top-level system directories (and their direct children for
    /usr, /usr/local, /var and /run): never mounted as a whole by derivation."""
    p = os.path.normpath(path)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    return p in _SYSTEM_TOP or os.path.dirname(p) in _SYSTEM_PARENTS


def _resolve(value: str, cwd: str) -> str:
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(value)))


def _mount(path: str, *, read_only: bool, secret: bool = False) -> list[Mount]:
    """The mount of `path`, plus one of its resolved location when it is a symlink."""
    out = [Mount.same_path(path, read_only=read_only, secret=secret)]
    real = os.path.realpath(path)
    if real != path and not is_system_dir(real):
        out.append(Mount.same_path(real, read_only=read_only, secret=secret))
    return out


def _dir_mount(path: str, *, read_only: bool) -> list[Mount]:
    if not os.path.exists(path) or is_system_dir(path) or is_system_dir(os.path.realpath(path)):
        return []
    return _mount(path, read_only=read_only)


def _file_mount(path: str, *, read_only: bool, secret: bool = False) -> list[Mount]:
    if not os.path.exists(path) or os.path.isdir(path):
        return []
    return _mount(path, read_only=read_only, secret=secret)


def _path_list(value: str, cwd: str, sep: str = os.pathsep) -> list[str]:
    return [_resolve(item, cwd) for item in value.split(sep) if item.strip()]


# -- per-kind mount rules -----------------------------------------------------------------------


def _inventory(value: str, cwd: str) -> list[Mount]:
    if "," in value:  # a host list, as Ansible decides it: never a path
        return []
    path = _resolve(value, cwd)
    if os.path.isdir(path):
        return _dir_mount(path, read_only=True)
    if not os.path.isfile(path):
        return []
    out = _file_mount(path, read_only=True)
    for sibling in ("group_vars", "host_vars"):
        out += _dir_mount(os.path.join(os.path.dirname(path), sibling), read_only=True)
    return out


def _secret_file(value: str, cwd: str) -> list[Mount]:
    path = _resolve(value, cwd)
    out = _file_mount(path, read_only=True, secret=True)
    if out:  # ssh also reads `<key>-cert.pub` next to a private key
        out += _file_mount(path + "-cert.pub", read_only=True)
    return out


def _vault_id(value: str, cwd: str) -> list[Mount]:
    # `label@source` or `source`; source `prompt`/`prompt_ask_vault_pass` asks, it is no file.
    source = value.split("@", 1)[1] if "@" in value else value
    if not source or source in ("prompt", "prompt_ask_vault_pass"):
        return []
    return _file_mount(_resolve(source, cwd), read_only=True, secret=True)


def _extra_vars(value: str, cwd: str) -> list[Mount]:
    if not value.startswith("@"):
        return []
    return _file_mount(_resolve(value[1:], cwd), read_only=True)


def _dir_list(value: str, cwd: str) -> list[Mount]:
    out: list[Mount] = []
    for path in _path_list(value, cwd):
        if os.path.isdir(path):
            out += _dir_mount(path, read_only=True)
        else:
            out += _file_mount(path, read_only=True)
    return out


def _playbook_dir(value: str, cwd: str) -> list[Mount]:
    path = _resolve(value, cwd)
    return _dir_mount(path, read_only=True) if os.path.isdir(path) else []


def _plain_file(value: str, cwd: str) -> list[Mount]:
    return _file_mount(_resolve(value, cwd), read_only=True)


def _output_file(value: str, cwd: str) -> list[Mount]:
    # The tool writes this file: its directory must be there, read-write.
    parent = os.path.dirname(_resolve(value, cwd))
    return _dir_mount(parent, read_only=False) if os.path.isdir(parent) else []


def _playbook(path: str) -> list[Mount]:
    if not os.path.isfile(path):
        return []
    parent = os.path.dirname(path)
    if is_system_dir(parent) or is_system_dir(os.path.realpath(parent)):
        return _file_mount(path, read_only=False)
    return _mount(parent, read_only=False)


# -- option tables ------------------------------------------------------------------------------

_PATH_RULES: dict[str, Callable[[str, str], list[Mount]]] = {
    "--inventory": _inventory,
    "--inventory-file": _inventory,
    "--private-key": _secret_file,
    "--key-file": _secret_file,
    "--vault-password-file": _secret_file,
    "--vault-pass-file": _secret_file,
    "--new-vault-password-file": _secret_file,
    "--become-password-file": _secret_file,
    "--become-pass-file": _secret_file,
    "--connection-password-file": _secret_file,
    "--conn-pass-file": _secret_file,
    "--vault-id": _vault_id,
    "--new-vault-id": _vault_id,
    "--extra-vars": _extra_vars,
    "--module-path": _dir_list,
    "--roles-path": _dir_list,
    "--playbook-dir": _playbook_dir,
    "--config": _plain_file,
    "--output": _output_file,
}

# Long options (of any Ansible tool) that take a value; other long options are flags unless
# written `--opt=value`. argparse's abbreviations of long options are not recognised.
_LONG_WITH_VALUE = frozenset(
    {
        *_PATH_RULES,
        "--args",
        "--background",
        "--become-method",
        "--become-user",
        "--checkout",
        "--directory",
        "--encrypt-vault-id",
        "--entry-point",
        "--forks",
        "--format",
        "--host",
        "--limit",
        "--module-name",
        "--name",
        "--poll",
        "--scp-extra-args",
        "--sftp-extra-args",
        "--skip-tags",
        "--sleep",
        "--ssh-common-args",
        "--ssh-extra-args",
        "--start-at-task",
        "--stdin-name",
        "--tags",
        "--task-timeout",
        "--timeout",
        "--tree",
        "--type",
        "--url",
        "--user",
        "--connection",
    }
)

# Short options that take a value, per tool (letters mean different things in different tools),
# mapped to the long option they stand for.
_COMMON_SHORT = {
    "i": "--inventory",
    "M": "--module-path",
    "e": "--extra-vars",
    "l": "--limit",
    "f": "--forks",
    "u": "--user",
    "c": "--connection",
    "T": "--timeout",
}
_SHORT_WITH_VALUE: dict[str, dict[str, str]] = {
    "ansible-playbook": {**_COMMON_SHORT, "t": "--tags"},
    "ansible": {
        **_COMMON_SHORT,
        "t": "--tree",
        "a": "--args",
        "m": "--module-name",
        "B": "--background",
        "P": "--poll",
    },
    "ansible-console": dict(_COMMON_SHORT),
    "ansible-pull": {
        **_COMMON_SHORT,
        "t": "--tags",
        "m": "--module-name",
        "C": "--checkout",
        "U": "--url",
        "d": "--directory",
        "s": "--sleep",
    },
    "ansible-inventory": {"i": "--inventory", "e": "--extra-vars", "l": "--limit"},
    "ansible-doc": {
        "M": "--module-path",
        "e": "--entry-point",
        "r": "--roles-path",
        "t": "--type",
    },
    "ansible-config": {"c": "--config", "t": "--type", "f": "--format"},
    "ansible-vault": {},
}

# Options whose path rule does not apply in a given tool (same spelling, other meaning).
_NOT_PATHS: dict[str, frozenset[str]] = {
    "ansible-doc": frozenset({"--extra-vars"}),
}


def _tool(executable: str) -> str | None:
    name = os.path.basename(executable)
    return name if name in _SHORT_WITH_VALUE else None


def _parse(tool: str, args: Sequence[str]) -> Iterator[tuple[str | None, str]]:
    """(long option, value) for each option with a value, and (None, arg) for positionals."""
    shorts = _SHORT_WITH_VALUE[tool]
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            for rest in args[i:]:
                yield None, rest
            return
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq:
                yield name, value
            elif name in _LONG_WITH_VALUE and i < len(args):
                yield name, args[i]
                i += 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            # A cluster of short flags, the first one that takes a value ends it:
            # `-vvv`, `-bK`, `-ihosts`, `-i hosts`.
            for pos in range(1, len(arg)):
                long_name = shorts.get(arg[pos])
                if long_name is None:
                    continue
                rest = arg[pos + 1 :]
                if rest:
                    yield long_name, rest
                elif i < len(args):
                    yield long_name, args[i]
                    i += 1
                break
            continue
        yield None, arg


def mounts_from_ansible_args(argv: Sequence[str], cwd: str) -> list[Mount]:
    """Mounts (same paths) for the files and dirs an Ansible command line names; see the
    module docstring for the rules. Not de-duplicated: pass the result to `normalise_mounts`."""
    if not argv:
        return []
    tool = _tool(argv[0])
    if tool is None:
        return []
    skip = _NOT_PATHS.get(tool, frozenset())
    out: list[Mount] = []
    for option, value in _parse(tool, argv[1:]):
        if option is None:
            if tool == "ansible-playbook":
                out += _playbook(_resolve(value, cwd))
            continue
        rule = _PATH_RULES.get(option)
        if rule is not None and option not in skip:
            out += rule(value, cwd)
    return out


def ansible_input_files(argv: Sequence[str], cwd: str) -> dict[str, list[str]]:
    """The files an Ansible command line reads its play from: {"playbook": [...], "inventory":
    [...], "extravars": [...]} (absolute paths of existing files; an inventory dir gives the
    files in it; a comma-separated host list or inline `-e` vars gives none)."""
    found: dict[str, list[str]] = {"playbook": [], "inventory": [], "extravars": []}
    tool = _tool(argv[0]) if argv else None
    if tool is None:
        return found
    for option, value in _parse(tool, argv[1:]):
        if option is None and tool == "ansible-playbook":
            found["playbook"] += _files_at(_resolve(value, cwd))
        elif option in ("--inventory", "--inventory-file") and "," not in value:
            found["inventory"] += _files_at(_resolve(value, cwd))
        elif option == "--extra-vars" and value.startswith("@"):
            found["extravars"] += _files_at(_resolve(value[1:], cwd))
    return found


def _files_at(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        return sorted(
            os.path.join(root, name)
            for root, _dirs, names in os.walk(path)
            for name in names
            if os.path.isfile(os.path.join(root, name))
        )
    return []


# -- environment --------------------------------------------------------------------------------

# Colon-separated path lists of things Ansible reads.
_ENV_PATH_LISTS = (
    "ANSIBLE_ROLES_PATH",
    "ANSIBLE_COLLECTIONS_PATH",
    "ANSIBLE_COLLECTIONS_PATHS",
    "ANSIBLE_LIBRARY",
    "ANSIBLE_MODULE_UTILS",
)
_ENV_READ_FILES = ("ANSIBLE_CONFIG",)
_ENV_SECRET_FILES = ("ANSIBLE_PRIVATE_KEY_FILE", "ANSIBLE_VAULT_PASSWORD_FILE")
# Written by the callback plugin inside the container (docs/architecture.md, event contract).
_ENV_WRITE_PATHS = (
    "CONTAINERRUNNER_ARTIFACT_DIR",
    "CONTAINERRUNNER_EVENT_FIFO",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION",
)


def mounts_from_env(env: Mapping[str, str], cwd: str) -> list[Mount]:
    """Mounts for existing paths the job's environment names.

    Read-only: ANSIBLE_ROLES_PATH, ANSIBLE_COLLECTIONS_PATH(S), ANSIBLE_LIBRARY,
    ANSIBLE_MODULE_UTILS and every ANSIBLE_*_PLUGINS (colon-separated lists), ANSIBLE_INVENTORY
    (comma-separated), the file ANSIBLE_CONFIG; read-only secrets: ANSIBLE_PRIVATE_KEY_FILE,
    ANSIBLE_VAULT_PASSWORD_FILE; read-write: CONTAINERRUNNER_ARTIFACT_DIR,
    CONTAINERRUNNER_EVENT_FIFO, ANSIBLE_CACHE_PLUGIN_CONNECTION.
    """
    out: list[Mount] = []
    for name in sorted(env):
        value = env[name]
        if not value:
            continue
        if name in _ENV_PATH_LISTS or (name.startswith("ANSIBLE_") and name.endswith("_PLUGINS")):
            out += _dir_list(value, cwd)
        elif name == "ANSIBLE_INVENTORY":
            for item in value.split(","):
                if item.strip():
                    out += _inventory(item.strip(), cwd)
        elif name in _ENV_READ_FILES:
            out += _plain_file(value, cwd)
        elif name in _ENV_SECRET_FILES:
            out += _secret_file(value, cwd)
        elif name in _ENV_WRITE_PATHS:
            path = _resolve(value, cwd)
            if os.path.isdir(path):
                out += _dir_mount(path, read_only=False)
            elif _is_fifo_or_file(path):
                out += _mount(path, read_only=False)
    return out


def _is_fifo_or_file(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


# -- user volume mounts -------------------------------------------------------------------------


def parse_volume_mount(text: str, cwd: str) -> Mount:
    """One `container_volume_mounts` entry: `src:dst[:opts]` or `src` (mounted at its own path).

    opts is a comma-separated list of `ro`, `rw`, `z`, `Z`. `z`/`Z` are accepted for
    compatibility and ignored: relabelling is the engine's decision (`:z` where SELinux is
    enforcing, never on system dirs). The source must exist and must not be `/`, `/usr` or
    `/home` as a whole; the target must be absolute.
    """

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"container_volume_mounts entry {text!r}: {why}")

    if not isinstance(text, str) or not text.strip():
        raise bad("expected 'src:dst[:opts]' or 'src'")
    parts = text.split(":")
    if len(parts) > 3:
        raise bad("expected 'src:dst[:opts]' (paths with ':' are not supported)")
    src_text = parts[0]
    if not src_text:
        raise bad("the source path is empty")
    source = _resolve(src_text, cwd)
    target = parts[1] if len(parts) > 1 else source
    opts = parts[2].split(",") if len(parts) == 3 else []
    unknown = [o for o in opts if o not in VOLUME_OPTIONS]
    if unknown:
        raise bad(
            f"unknown option(s) {', '.join(repr(o) for o in unknown)}; "
            f"allowed: {', '.join(VOLUME_OPTIONS)}"
        )
    if "ro" in opts and "rw" in opts:
        raise bad("both 'ro' and 'rw' given")
    if not target.startswith("/"):
        raise bad(f"the target {target!r} must be an absolute path in the container")
    target = os.path.normpath(target)
    if target.startswith("//"):
        target = "/" + target.lstrip("/")
    if target == "/":
        raise bad("cannot mount over the container's root directory '/'")
    if not os.path.exists(source):
        raise bad(f"the source {source!r} does not exist")
    for candidate in (source, os.path.realpath(source)):
        if candidate in REFUSED_VOLUME_SOURCES:
            raise bad(
                f"refusing to mount {candidate!r} as a whole; mount the subdirectories "
                f"the job needs instead"
            )
    return Mount(source=source, target=target, read_only="ro" in opts)


# -- ansible-runner's /runner layout ------------------------------------------------------------

RUNNER_ROOT = "/runner"
RUNNER_ENV = "/runner/env"
RUNNER_ARTIFACTS = "/runner/artifacts"


def runner_layout_mounts(
    private_data_dir: str,
    artifact_base: str,
    volume_mounts: Sequence[str] = (),
    cwd: str = "/",
) -> list[Mount]:
    """The private data dir also at ansible-runner's `/runner`, besides its same-path mounts.

    - `private_data_dir` at `/runner`, read-write (ansible-runner: `-v PDD/:/runner/:Z`), so
      `/runner/project`, `/runner/inventory` and `/runner/env/extravars` resolve;
    - `private_data_dir/env` at `/runner/env`, a read-only secret (it holds `passwords` and
      `ssh_key`): `normalise_mounts` keeps it read-only over the read-write `/runner`;
    - `artifact_base` (the caller's `artifact_dir`, else `private_data_dir/artifacts`) at
      `/runner/artifacts`, read-write.

    A source that is not an existing directory, or is a system directory (`is_system_dir`),
    is skipped; without the private data dir there is no layout. A layout mount gives way to
    a `container_volume_mounts` entry (`volume_mounts`, relative sources against `cwd`) at or
    above its target that shows something else there, so no user mount is refused for it.
    """
    pdd = os.path.abspath(private_data_dir)
    if not _layout_source(pdd):
        return []
    out = [Mount(source=pdd, target=RUNNER_ROOT)]
    env = os.path.join(pdd, "env")
    if _layout_source(env):
        out.append(Mount(source=env, target=RUNNER_ENV, read_only=True, secret=True))
    artifacts = os.path.abspath(artifact_base)
    if _layout_source(artifacts):
        out.append(Mount(source=artifacts, target=RUNNER_ARTIFACTS))
    users = [m for m in (_try_volume(text, cwd) for text in volume_mounts) if m is not None]
    return [m for m in out if not any(_shows_other(user, m) for user in users)]


def _layout_source(path: str) -> bool:
    return (
        os.path.isdir(path)
        and not is_system_dir(path)
        and not is_system_dir(os.path.realpath(path))
    )


def _try_volume(text: str, cwd: str) -> Mount | None:
    try:
        return parse_volume_mount(text, cwd)
    except ConfigurationError:
        return None  # containerize refuses the entry with this same message


def _shows_other(user: Mount, layout: Mount) -> bool:
    """`user` is mounted at or above `layout.target` and shows another path there."""
    target = PurePosixPath(layout.target)
    if not target.is_relative_to(user.target):
        return False
    return str(PurePosixPath(user.source) / target.relative_to(user.target)) != layout.source


# -- normalisation ------------------------------------------------------------------------------


def _parts(path: str) -> tuple[str, ...]:
    return PurePosixPath(path).parts


def _merge_same_target(group: list[Mount]) -> Mount:
    sources = sorted({m.source for m in group})
    if len(sources) > 1:
        raise ConfigurationError(
            f"two mounts have the same target {group[0].target!r} but different sources "
            f"({', '.join(repr(s) for s in sources)}); check container_volume_mounts"
        )
    secret = any(m.secret for m in group)
    read_only = secret or all(m.read_only for m in group)
    return Mount(source=sources[0], target=group[0].target, read_only=read_only, secret=secret)


def _covers(parent: Mount, child: Mount) -> bool:
    """The parent already shows the child's source at the child's target, with at least the
    access the child asks for; a secret is covered only by a read-only parent."""
    rel = PurePosixPath(child.target).relative_to(parent.target)
    if str(PurePosixPath(parent.source) / rel) != child.source:
        return False  # another offset: a second view, not covered
    if child.secret:
        return parent.read_only
    return not parent.read_only or child.read_only


def normalise_mounts(mounts: Iterable[Mount]) -> tuple[Mount, ...]:
    """Deterministic, minimal mounts.

    1. Mounts with the same target merge. Different sources for one target are an error
       (the engines refuse duplicate destinations). Otherwise read-write wins over read-only,
       except that a secret (key/password/vault file) is always read-only: ro wins for it.
    2. Order: by target path components, then source; parents come before their children,
       which is also the order the engines mount nested binds in.
    3. A mount is dropped when the nearest kept mount above its target shows the same source
       there (same offset) and is read-write, or read-only and the mount is read-only too.
       A read-only child of a read-write parent is therefore dropped (it gets read-write),
       unless it is a secret: that stays as a read-only bind over the read-write parent.
       A read-write child of a read-only parent stays.
    """
    by_target: dict[str, list[Mount]] = {}
    for m in mounts:
        by_target.setdefault(m.target, []).append(m)
    merged = sorted(
        (_merge_same_target(group) for group in by_target.values()),
        key=lambda m: (_parts(m.target), m.source),
    )
    kept: list[Mount] = []
    for m in merged:
        parts = _parts(m.target)
        parents = [k for k in kept if parts[: len(_parts(k.target))] == _parts(k.target)]
        if parents:
            nearest = max(parents, key=lambda k: len(_parts(k.target)))
            if _covers(nearest, m):
                continue
        kept.append(m)
    return tuple(kept)
