"""argv builders for the Ansible executables: pure functions from typed parameters to a list.

No I/O and no processes: each function validates its parameters (ConfigurationError naming the
parameter) and returns the command line. The executables are named bare (`ansible-playbook`);
the process layer resolves them on PATH, on the host or in the container.

Extra variables never go on argv as JSON: argv is recorded in the artifacts, so the caller
writes extravars to a file and passes its path (`-e @<file>`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from containerrunner.errors import ConfigurationError

DOC_RESPONSE_FORMATS: tuple[str, ...] = ("json", "human")
INVENTORY_ACTIONS: tuple[str, ...] = ("graph", "host", "list")
INVENTORY_RESPONSE_FORMATS: tuple[str, ...] = ("json", "yaml", "toml")
CONFIG_ACTIONS: tuple[str, ...] = ("list", "dump", "view")
# Plugin types whose `ansible-doc -F -j` works (see lists_files_as_text).
LISTS_AS_JSON: tuple[str, ...] = ("role", "keyword")
MAX_VERBOSITY = 5


def playbook_argv(
    playbook: str,
    *,
    inventories: Sequence[str] = (),
    extravars_file: str | None = None,
    limit: str | None = None,
    tags: str | None = None,
    skip_tags: str | None = None,
    forks: int | None = None,
    verbosity: int = 0,
    cmdline: str | Sequence[str] = (),
    binary: str | None = None,
) -> list[str]:
    """`ansible-playbook [cmdline] -i INV... [--limit] [-e @FILE] [-v..] [--tags]
    [--skip-tags] [--forks] PLAYBOOK`; `binary` replaces `ansible-playbook`."""
    _require_str(playbook, "playbook")
    argv = _common(
        binary if binary is not None else "ansible-playbook",
        binary_given=binary is not None,
        inventories=inventories,
        extravars_file=extravars_file,
        limit=limit,
        verbosity=verbosity,
        cmdline=cmdline,
    )
    argv += _option("--tags", tags, "tags")
    argv += _option("--skip-tags", skip_tags, "skip_tags")
    argv += _forks(forks)
    argv.append(playbook)
    return argv


def adhoc_argv(
    module: str,
    host_pattern: str,
    *,
    module_args: str | None = None,
    inventories: Sequence[str] = (),
    extravars_file: str | None = None,
    limit: str | None = None,
    forks: int | None = None,
    verbosity: int = 0,
    cmdline: str | Sequence[str] = (),
    binary: str | None = None,
) -> list[str]:
    """`ansible [cmdline] -i INV... [--limit] [-e @FILE] [-v..] [--forks] -m MODULE [-a ARGS]
    HOST_PATTERN`; `binary` replaces `ansible`."""
    _require_str(module, "module")
    _require_str(host_pattern, "host_pattern")
    argv = _common(
        binary if binary is not None else "ansible",
        binary_given=binary is not None,
        inventories=inventories,
        extravars_file=extravars_file,
        limit=limit,
        verbosity=verbosity,
        cmdline=cmdline,
    )
    argv += _forks(forks)
    argv += ["-m", module]
    if module_args is not None:
        if not isinstance(module_args, str):
            raise ConfigurationError(
                f"module_args must be a string (as for `ansible -a`), not {module_args!r}"
            )
        argv += ["-a", module_args]
    argv.append(host_pattern)
    return argv


def plugin_docs_argv(
    plugin_names: Sequence[str],
    plugin_type: str | None = None,
    response_format: str | None = None,
    snippet: bool = False,
    playbook_dir: str | None = None,
    module_path: str | None = None,
) -> list[str]:
    """`ansible-doc [-j] [-s] [-t TYPE] [--playbook-dir DIR] [-M PATH] NAME...`."""
    _doc_format(response_format)
    names = _str_list(
        plugin_names, "plugin_names", hint="e.g. plugin_names=['ansible.builtin.ping']"
    )
    if not names:
        raise ConfigurationError("plugin_names must name at least one plugin")
    argv = ["ansible-doc"]
    if response_format == "json":
        argv.append("-j")
    if snippet:
        argv.append("-s")
    argv += _option("-t", plugin_type, "plugin_type")
    argv += _option("--playbook-dir", playbook_dir, "playbook_dir")
    argv += _option("-M", module_path, "module_path")
    return argv + names


def lists_files_as_text(
    list_files: bool, response_format: str | None, plugin_type: str | None
) -> bool:
    """Whether get_plugin_list reads `ansible-doc -F` as text to give JSON's `{plugin: path}`.

    `ansible-doc -F -j` fails on ansible-core 2.14 to 2.19 ("Object of type bytes is not JSON
    serializable": the paths are bytes) for every plugin type but `role` and `keyword`, whose
    `-F -j` gives the same JSON as `-l -j` (and whose `-F` text is no file listing).
    """
    return bool(list_files) and response_format == "json" and plugin_type not in LISTS_AS_JSON


def plugin_list_argv(
    list_files: bool = False,
    response_format: str | None = None,
    plugin_type: str | None = None,
    playbook_dir: str | None = None,
    module_path: str | None = None,
) -> list[str]:
    """`ansible-doc -l|-F [-j] [-t TYPE] [--playbook-dir DIR] [-M PATH]`; no `-j` with `-F`
    when the file listing is read as text (lists_files_as_text)."""
    _doc_format(response_format)
    argv = ["ansible-doc", "-F" if list_files else "-l"]
    if response_format == "json" and not lists_files_as_text(
        list_files, response_format, plugin_type
    ):
        argv.append("-j")
    argv += _option("-t", plugin_type, "plugin_type")
    argv += _option("--playbook-dir", playbook_dir, "playbook_dir")
    argv += _option("-M", module_path, "module_path")
    return argv


def inventory_argv(
    action: str,
    inventories: Sequence[str],
    response_format: str | None = None,
    host: str | None = None,
    playbook_dir: str | None = None,
    vault_ids: str | Sequence[str] | None = None,
    vault_password_file: str | None = None,
    output_file: str | None = None,
    export: bool | None = None,
) -> list[str]:
    """`ansible-inventory --list|--host H|--graph -i INV... [-y|--toml] [--playbook-dir DIR]
    [--vault-id ID...] [--vault-password-file F] [--output F] [--export]`."""
    if action not in INVENTORY_ACTIONS:
        raise ConfigurationError(
            f"action must be one of {', '.join(INVENTORY_ACTIONS)}; got {action!r}"
        )
    if response_format is not None and response_format not in INVENTORY_RESPONSE_FORMATS:
        raise ConfigurationError(
            f"response_format for ansible-inventory must be one of "
            f"{', '.join(INVENTORY_RESPONSE_FORMATS)}; got {response_format!r}"
        )
    if action == "graph" and response_format not in (None, "json"):
        raise ConfigurationError(
            f"response_format {response_format!r} does not apply to action 'graph' "
            f"(its output is a text tree); leave response_format unset"
        )
    invs = _str_list(inventories, "inventories", hint="e.g. inventories=['inventory/hosts']")
    if not invs:
        raise ConfigurationError("inventories must name at least one inventory")
    if action == "host":
        if host is None:
            raise ConfigurationError("host is required when action is 'host'")
        _require_str(host, "host")
    elif host is not None:
        raise ConfigurationError(f"host only applies to action 'host', not {action!r}")
    argv = ["ansible-inventory", f"--{action}"]
    if action == "host" and host is not None:
        argv.append(host)
    for inv in invs:
        argv += ["-i", inv]
    if response_format in ("yaml", "toml"):
        argv.append("-y" if response_format == "yaml" else "--toml")
    argv += _option("--playbook-dir", playbook_dir, "playbook_dir")
    if isinstance(vault_ids, str):
        vault_ids = [vault_ids]
    for vault_id in _str_list(vault_ids or [], "vault_ids"):
        argv += ["--vault-id", vault_id]
    argv += _option("--vault-password-file", vault_password_file, "vault_password_file")
    argv += _option("--output", output_file, "output_file")
    if export:
        argv.append("--export")
    return argv


def config_argv(
    action: str, config_file: str | None = None, only_changed: bool | None = None
) -> list[str]:
    """`ansible-config list|dump|view [-c FILE] [--only-changed]`."""
    if action not in CONFIG_ACTIONS:
        raise ConfigurationError(
            f"action must be one of {', '.join(CONFIG_ACTIONS)}; got {action!r}"
        )
    if only_changed and action != "dump":
        raise ConfigurationError(f"only_changed only applies to action 'dump', not {action!r}")
    argv = ["ansible-config", action]
    argv += _option("-c", config_file, "config_file")
    if only_changed:
        argv.append("--only-changed")
    return argv


def role_list_argv(collection: str | None = None, playbook_dir: str | None = None) -> list[str]:
    """`ansible-doc -t role -l -j [--playbook-dir DIR] [COLLECTION]`."""
    argv = ["ansible-doc", "-t", "role", "-l", "-j"]
    argv += _option("--playbook-dir", playbook_dir, "playbook_dir")
    if collection is not None:
        _require_str(collection, "collection")
        argv.append(collection)
    return argv


def role_argspec_argv(
    role: str, collection: str | None = None, playbook_dir: str | None = None
) -> list[str]:
    """`ansible-doc -t role -j [--playbook-dir DIR] [COLLECTION.]ROLE`."""
    _require_str(role, "role")
    argv = ["ansible-doc", "-t", "role", "-j"]
    argv += _option("--playbook-dir", playbook_dir, "playbook_dir")
    if collection is not None:
        _require_str(collection, "collection")
        role = f"{collection}.{role}"
    argv.append(role)
    return argv


def split_cmdline(cmdline: str | Sequence[str], option: str = "cmdline") -> list[str]:
    """A command line string split like a shell would (`shlex.split`), or a list as is."""
    if isinstance(cmdline, str):
        try:
            return shlex.split(cmdline)
        except ValueError as exc:
            raise ConfigurationError(f"{option}: cannot split {cmdline!r}: {exc}") from exc
    return _str_list(cmdline, option)


def _common(
    executable: str,
    *,
    binary_given: bool,
    inventories: Sequence[str],
    extravars_file: str | None,
    limit: str | None,
    verbosity: int,
    cmdline: str | Sequence[str],
) -> list[str]:
    if binary_given:
        _require_str(executable, "binary")
    argv = [executable, *split_cmdline(cmdline)]
    for inv in _str_list(inventories, "inventories"):
        argv += ["-i", inv]
    argv += _option("--limit", limit, "limit")
    if extravars_file is not None:
        _require_str(extravars_file, "extravars_file")
        argv += ["-e", f"@{extravars_file}"]
    if isinstance(verbosity, bool) or not isinstance(verbosity, int):
        raise ConfigurationError(f"verbosity must be a whole number, not {verbosity!r}")
    if not 0 <= verbosity <= MAX_VERBOSITY:
        raise ConfigurationError(f"verbosity must be from 0 to {MAX_VERBOSITY}, not {verbosity}")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    return argv


def _forks(forks: int | None) -> list[str]:
    if forks is None:
        return []
    if isinstance(forks, bool) or not isinstance(forks, int) or forks < 0:
        raise ConfigurationError(f"forks must be a whole number >= 0, not {forks!r}")
    return ["--forks", str(forks)] if forks else []


def _option(flag: str, value: str | None, name: str) -> list[str]:
    if value is None:
        return []
    _require_str(value, name)
    return [flag, value]


def _require_str(value: object, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string, not {value!r}")


def _doc_format(response_format: object) -> None:
    if response_format is not None and response_format not in DOC_RESPONSE_FORMATS:
        raise ConfigurationError(
            f"response_format for ansible-doc must be one of {', '.join(DOC_RESPONSE_FORMATS)}; "
            f"got {response_format!r}"
        )


def _str_list(value: object, name: str, hint: str = "") -> list[str]:
    """A list/tuple of strings; a lone string is refused (it would be split into letters)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        extra = f" ({hint})" if hint else ""
        raise ConfigurationError(
            f"{name} must be a list of strings, not {type(value).__name__} {value!r}{extra}"
        )
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{name} must contain only non-empty strings; found {item!r}")
    return list(value)
