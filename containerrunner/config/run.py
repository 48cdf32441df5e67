"""`RunSpec`: the validated `run()` request, merged with the private data dir.

`RunSpec.from_kwargs(**kw)` takes `run()`'s keyword arguments (ansible-runner's names), reads
`private_data_dir/env/*` and merges the files UNDER the keyword arguments:

    explicit keyword argument  >  `settings=` keyword  >  env/settings file  >  default

and, for the mappings (extravars, passwords, envvars), key by key: a key given as a keyword
argument wins over the same key in the file. A keyword argument counts as given when it is
present and not None. Nothing is written anywhere; plays, inventory data and extravars stay data
here and the runner writes them to temporary files when it runs the job.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from containerrunner.config.execution import EXECUTION_KWARGS, ExecutionOptions
from containerrunner.errors import ConfigurationError
from containerrunner.inputs import (
    PrivateData,
    Settings,
    parse_extravars,
    parse_settings,
    read_private_data_dir,
)
from containerrunner.validate import (
    HANDLER_NAMES,
    check_handlers,
    given_flag,
    job_ident,
    parse_passwords,
)

RunKind = Literal["playbook", "plays", "role", "adhoc"]

#: where ansible-runner's containers see the private data dir (see isolation/mounts.py)
RUNNER_ROOT = "/runner"

HANDLER_KWARGS = HANDLER_NAMES

RUN_KWARGS: frozenset[str] = frozenset(
    {
        "private_data_dir",
        "project_dir",
        "artifact_dir",
        "ident",
        "playbook",
        "inventory",
        "roles_path",
        "role",
        "role_vars",
        "role_skip_facts",
        "host_pattern",
        "hosts",
        "module",
        "module_args",
        "limit",
        "tags",
        "skip_tags",
        "forks",
        "verbosity",
        "extravars",
        "envvars",
        "passwords",
        "settings",
        "ssh_key",
        "cmdline",
        "binary",
        "rotate_artifacts",
        "quiet",
        "json_mode",
        "runner_mode",
        "suppress_output_file",
        "omit_event_data",
        "only_failed_event_data",
        "fact_cache",
        "fact_cache_type",
        "suppress_env_files",
        *EXECUTION_KWARGS,
        *HANDLER_KWARGS,
    }
)

# ansible-runner options that containerrunner deliberately does not offer, and what to do instead.
UNSUPPORTED_KWARGS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "process_isolation_path",
            "process_isolation_hide_paths",
            "process_isolation_show_paths",
            "process_isolation_ro_paths",
            "directory_isolation_base_path",
        ),
        "the bubblewrap sandbox is not supported; use process_isolation=True with "
        "process_isolation_executable='podman' or 'docker' to run in a container",
    ),
    "streamer": "streamer= works with run() (transmit, worker, process); elsewhere use "
    "containerrunner.streaming",
}

# A playbook given as a collection name (namespace.collection.playbook), not as a file.
_FQCN = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*\.[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class Handlers:
    """The caller's callbacks; each is None or a callable (checked)."""

    event_handler: Callable[..., Any] | None = None
    status_handler: Callable[..., Any] | None = None
    cancel_callback: Callable[..., Any] | None = None
    finished_callback: Callable[..., Any] | None = None
    artifacts_handler: Callable[..., Any] | None = None
    progress_handler: Callable[..., Any] | None = None
    pull_progress_handler: Callable[..., Any] | None = None


@dataclass(frozen=True)
class RunSpec:
    """What `run()` runs, validated; build it with `RunSpec.from_kwargs`."""

    execution: ExecutionOptions
    ident: str
    private_data_dir: str | None = None
    project_dir: str | None = None
    artifact_dir: str | None = None  # the base dir; this run's artifacts go in <it>/<ident>
    # What to run: exactly one of playbook, plays, role, module is set.
    playbook: str | None = None  # absolute path of a playbook file, or a collection playbook
    plays: tuple[Mapping[str, Any], ...] | None = None  # inline plays (written out by the runner)
    role: str | None = None
    role_vars: Mapping[str, Any] | None = None
    role_skip_facts: bool = False
    module: str | None = None
    module_args: str | None = None
    host_pattern: str | None = None
    binary: str | None = None
    roles_path: tuple[str, ...] = ()  # for ANSIBLE_ROLES_PATH; empty: leave it unset
    # Inventory: existing paths for `-i`, or data/text the runner writes to a file.
    inventory: tuple[str, ...] = ()
    inventory_data: Mapping[str, Any] | None = None
    inventory_text: str | None = None
    # ansible-playbook / ansible options
    limit: str | None = None
    tags: str | None = None
    skip_tags: str | None = None
    forks: int | None = None
    verbosity: int = 0
    extravars: Mapping[str, Any] = field(default_factory=dict)
    cmdline: tuple[str, ...] = ()
    # inputs for the process
    passwords: Mapping[str, str] = field(default_factory=dict)
    ssh_key: str | None = None
    pexpect_timeout: float | None = None  # env/settings: seconds between cancel_callback calls
    runner_mode: Literal["pexpect", "subprocess"] = "pexpect"
    # output
    quiet: bool = False
    json_mode: bool = False
    suppress_output_file: bool = False
    omit_event_data: bool = False
    only_failed_event_data: bool = False
    rotate_artifacts: int = 0
    fact_cache_type: str = "jsonfile"
    fact_cache: str = "fact_cache"  # subdir of the job's artifact dir (jsonfile cache only)
    handlers: Handlers = field(default_factory=Handlers)

    @property
    def kind(self) -> RunKind:
        if self.module is not None:
            return "adhoc"
        if self.role is not None:
            return "role"
        if self.plays is not None:
            return "plays"
        return "playbook"

    @property
    def job_artifact_dir(self) -> str | None:
        """artifacts/<ident>, or None when there is no private data dir nor artifact_dir."""
        return os.path.join(self.artifact_dir, self.ident) if self.artifact_dir else None

    @property
    def fact_cache_dir(self) -> str | None:
        """Where the jsonfile fact cache lives, or None for other cache types."""
        job_dir = self.job_artifact_dir
        if self.fact_cache_type != "jsonfile" or job_dir is None:
            return None
        return os.path.join(job_dir, self.fact_cache)

    @property
    def ansible_roles_path(self) -> str | None:
        """The value for ANSIBLE_ROLES_PATH, or None to leave it alone."""
        return ":".join(self.roles_path) if self.roles_path else None

    def role_play(self) -> list[dict[str, Any]]:
        """The one-play playbook that runs `role` (ansible-runner's shape)."""
        if self.role is None:
            raise ConfigurationError("role_play() needs a role run; this spec has no role")
        role: dict[str, Any] = {"name": self.role}
        if self.role_vars:
            role["vars"] = dict(self.role_vars)
        return [
            {
                "hosts": self.host_pattern or "all",
                "gather_facts": not self.role_skip_facts,
                "roles": [role],
            }
        ]

    def inline_plays(self) -> list[dict[str, Any]] | None:
        """The plays the runner must write to a playbook file: inline plays or the role play."""
        if self.role is not None:
            return self.role_play()
        if self.plays is not None:
            return [dict(play) for play in self.plays]
        return None

    def inventory_file(self) -> tuple[str, str] | None:
        """(file name, content) of an inventory the runner must write, or None."""
        if self.inventory_data is not None:
            import yaml  # deferred: only an inventory given as data pays its import

            text = yaml.safe_dump(dict(self.inventory_data), default_flow_style=False)
            return "hosts.yml", text
        if self.inventory_text is not None:
            return "hosts", self.inventory_text
        return None

    @classmethod
    def from_kwargs(cls, **kw: Any) -> RunSpec:
        """Validate `run()`'s keyword arguments; errors name the offending option or file."""
        reject_unknown(kw)
        given = {name: value for name, value in kw.items() if value is not None}

        pdd_arg = given.get("private_data_dir")
        if pdd_arg is not None and not isinstance(pdd_arg, str | os.PathLike):
            raise ConfigurationError(f"private_data_dir must be a path, not {pdd_arg!r}")
        private = read_private_data_dir(os.fspath(pdd_arg)) if pdd_arg is not None else None
        pdd = private.path if private else None

        settings = merged_settings(given, private)
        execution = execution_options(given, private, settings)
        project_dir = _dir_option(given, "project_dir") or (
            os.path.join(pdd, "project") if pdd else None
        )
        artifact_dir = _dir_option(given, "artifact_dir") or (
            os.path.join(pdd, "artifacts") if pdd else None
        )
        ident = job_ident(given.get("ident"))

        playbook: str | None = None
        plays: tuple[Mapping[str, Any], ...] | None = None
        chosen = [k for k in ("playbook", "module", "role") if k in given]
        if not chosen:
            raise ConfigurationError(
                "nothing to run: give one of playbook (a file or a list of plays), "
                "module (with host_pattern) or role"
            )
        if len(chosen) > 1:
            raise ConfigurationError(
                f"give only one of playbook, module and role; got {' and '.join(chosen)}"
            )
        role = _optional_str(given, "role")
        module = _optional_str(given, "module")
        host_pattern = _host_pattern(given)
        if "playbook" in given:
            playbook, plays = _playbook(given["playbook"], project_dir, pdd, execution)
        _check_applicable(given, chosen[0])
        if module is not None and host_pattern is None:
            raise ConfigurationError(
                "module needs host_pattern: the hosts to run it on (e.g. host_pattern='all')"
            )

        roles_path = _roles_path(given, role, project_dir, pdd, execution.envvars)
        if role is not None:
            _check_role(role, roles_path)
        role_vars = given.get("role_vars")
        if role_vars is not None and not isinstance(role_vars, Mapping):
            raise ConfigurationError(f"role_vars must be a mapping, not {role_vars!r}")

        inventory, inventory_data, inventory_text = _inventory(given.get("inventory"), private)

        extravars = {
            **(private.extravars if private else {}),
            **parse_extravars(given.get("extravars"), "extravars"),
        }
        passwords = merged_passwords(given, private)
        ssh_key = merged_ssh_key(given, private)
        cmdline = _cmdline(given, private)

        fact_cache_type = _optional_str(given, "fact_cache_type") or settings.fact_cache_type
        fact_cache = _optional_str(given, "fact_cache") or settings.fact_cache or "fact_cache"
        if os.path.isabs(fact_cache) or ".." in fact_cache.split(os.sep):
            raise ConfigurationError(
                f"fact_cache must be a directory name inside the artifact dir, not {fact_cache!r}"
            )
        quiet = given_flag(given, "quiet", settings.suppress_ansible_output)
        runner_mode = given.get("runner_mode", "pexpect")
        if runner_mode not in ("pexpect", "subprocess"):
            raise ConfigurationError(
                f"runner_mode must be 'pexpect' or 'subprocess', not {runner_mode!r}"
            )

        return cls(
            execution=execution,
            ident=ident,
            private_data_dir=pdd,
            project_dir=project_dir,
            artifact_dir=artifact_dir,
            playbook=playbook,
            plays=plays,
            role=role,
            role_vars=dict(role_vars) if role_vars else None,
            role_skip_facts=given_flag(given, "role_skip_facts", False),
            module=module,
            module_args=_optional_str(given, "module_args"),
            host_pattern=host_pattern,
            binary=_optional_str(given, "binary"),
            roles_path=roles_path,
            inventory=inventory,
            inventory_data=inventory_data,
            inventory_text=inventory_text,
            limit=_optional_str(given, "limit"),
            tags=_tags(given, "tags"),
            skip_tags=_tags(given, "skip_tags"),
            forks=_forks(given.get("forks")),
            verbosity=_verbosity(given.get("verbosity")),
            extravars=extravars,
            cmdline=cmdline,
            passwords=passwords,
            ssh_key=ssh_key,
            pexpect_timeout=settings.pexpect_timeout,
            runner_mode=runner_mode,
            quiet=quiet,
            json_mode=given_flag(given, "json_mode", False),
            suppress_output_file=given_flag(
                given, "suppress_output_file", settings.suppress_output_file
            ),
            omit_event_data=given_flag(given, "omit_event_data", False),
            only_failed_event_data=given_flag(given, "only_failed_event_data", False),
            rotate_artifacts=check_rotate(given.get("rotate_artifacts")),
            fact_cache_type=fact_cache_type or "jsonfile",
            fact_cache=fact_cache,
            handlers=_handlers(given),
        )


def reject_unknown(kw: Mapping[str, Any]) -> None:
    """Raise ConfigurationError naming the first keyword that run() does not take."""
    for name in kw:
        if name in RUN_KWARGS:
            continue
        if name in UNSUPPORTED_KWARGS:
            raise ConfigurationError(
                f"run() got the ansible-runner option {name!r}, which containerrunner does not "
                f"support: {UNSUPPORTED_KWARGS[name]}"
            )
        import difflib  # the error path only

        close = difflib.get_close_matches(name, sorted(RUN_KWARGS), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigurationError(f"run() got an unexpected keyword argument {name!r}{hint}")


def merged_settings(given: Mapping[str, Any], private: PrivateData | None) -> Settings:
    from_file = private.settings if private else Settings()
    if "settings" not in given:
        return from_file
    return parse_settings(given["settings"], "settings").merged_over(from_file)


def merged_passwords(given: Mapping[str, Any], private: PrivateData | None) -> dict[str, str]:
    """env/passwords with the `passwords` keyword argument's answers over it, key by key."""
    return {
        **(private.passwords if private else {}),
        **parse_passwords(given.get("passwords"), "passwords"),
    }


def merged_ssh_key(given: Mapping[str, Any], private: PrivateData | None) -> str | None:
    """The `ssh_key` keyword argument, else env/ssh_key."""
    return _optional_str(given, "ssh_key") or (private.ssh_key if private else None)


def execution_options(
    given: Mapping[str, Any], private: PrivateData | None, settings: Settings
) -> ExecutionOptions:
    """ExecutionOptions from the kwargs, with the settings supplying what the kwargs do not."""
    envvars = given.get("envvars")
    if envvars is not None and not isinstance(envvars, Mapping):
        raise ConfigurationError(f"envvars must be a mapping of NAME: value, not {envvars!r}")
    options: dict[str, Any] = {name: given[name] for name in EXECUTION_KWARGS if name in given}
    options["envvars"] = {**(private.envvars if private else {}), **(envvars or {})}
    defaults: dict[str, Any] = {
        "process_isolation": settings.process_isolation,
        "process_isolation_executable": settings.process_isolation_executable,
        "container_image": settings.container_image,
        "container_options": settings.container_options,
        "container_network": settings.container_network,
        "container_volume_mounts": settings.container_volume_mounts,
        "idle_timeout": settings.idle_timeout,
    }
    if "timeout" not in given and "job_timeout" not in given:
        defaults["job_timeout"] = settings.job_timeout
    for name, value in defaults.items():
        if name not in options and value is not None:
            options[name] = value
    return ExecutionOptions.from_kwargs(**options)


def _optional_str(given: Mapping[str, Any], name: str) -> str | None:
    value = given.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string, not {value!r}")
    return value


def _dir_option(given: Mapping[str, Any], name: str) -> str | None:
    value = given.get(name)
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigurationError(f"{name} must be a directory path, not {value!r}")
    return os.path.abspath(os.fspath(value))


def _host_pattern(given: Mapping[str, Any]) -> str | None:
    if "host_pattern" in given and "hosts" in given and given["host_pattern"] != given["hosts"]:
        raise ConfigurationError("give host_pattern or its alias hosts, not both")
    name = "host_pattern" if "host_pattern" in given else "hosts"
    return _optional_str(given, name)


def _check_applicable(given: Mapping[str, Any], chosen: str) -> None:
    """Options that only mean something for one kind of run are refused for the others."""
    only_for = {
        "module_args": ("module", "module_args only applies to module runs"),
        "role_vars": ("role", "role_vars only applies to role runs"),
        "role_skip_facts": ("role", "role_skip_facts only applies to role runs"),
    }
    for name, (kind, message) in only_for.items():
        if name in given and chosen != kind:
            raise ConfigurationError(f"{message}; this is a {chosen} run")
    if chosen == "playbook" and ("host_pattern" in given or "hosts" in given):
        raise ConfigurationError(
            "host_pattern only applies to module and role runs; "
            "use limit to restrict the hosts a playbook runs on"
        )
    if chosen == "module":
        for name in ("tags", "skip_tags"):
            if name in given:
                raise ConfigurationError(
                    f"{name} only applies to playbook and role runs; this is a module run"
                )


def _playbook(
    value: Any, project_dir: str | None, pdd: str | None, execution: ExecutionOptions
) -> tuple[str | None, tuple[Mapping[str, Any], ...] | None]:
    """(playbook path, None) for a file, (None, plays) for inline plays."""
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, list | tuple):
        if not value:
            raise ConfigurationError("playbook is an empty list of plays")
        for index, play in enumerate(value):
            if not isinstance(play, Mapping):
                raise ConfigurationError(
                    f"playbook[{index}] must be a play (a mapping), not {play!r}"
                )
        return None, tuple(dict(play) for play in value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"playbook must be a path, a play or a list of plays, not {value!r}"
        )
    if os.path.isabs(value):
        path = from_runner_layout(value, pdd)
    else:
        # ansible-runner runs ansible-playbook in project/ if it exists, else in the data dir.
        base = pdd or execution.cwd
        if project_dir is not None and os.path.isdir(project_dir):
            base = project_dir
        path = os.path.join(base, value)
    if os.path.isfile(path):
        return os.path.normpath(path), None
    if _FQCN.match(value) and not value.endswith((".yml", ".yaml", ".json")):
        return value, None  # a collection playbook; ansible-playbook resolves it
    raise ConfigurationError(f"playbook {value!r} not found: looked for {path}")


def _roles_path(
    given: Mapping[str, Any],
    role: str | None,
    project_dir: str | None,
    pdd: str | None,
    envvars: Mapping[str, str],
) -> tuple[str, ...]:
    value = given.get("roles_path")
    if value is None:
        entries: list[str] = []
    elif isinstance(value, str | os.PathLike):
        entries = [p for p in os.fspath(value).split(":") if p]
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        entries = [p for p in value if p]
    else:
        raise ConfigurationError(f"roles_path must be a path or a list of paths, not {value!r}")
    entries = [os.path.abspath(os.path.expanduser(p)) for p in entries]
    if role is not None:
        defaults = [os.path.join(d, "roles") for d in (project_dir, pdd) if d]
        from_env = [p for p in envvars.get("ANSIBLE_ROLES_PATH", "").split(":") if p]
        entries += [d for d in defaults if os.path.isdir(d)] + from_env
    return tuple(dict.fromkeys(entries))


def _check_role(role: str, roles_path: Sequence[str]) -> None:
    if "/" in role:
        if not os.path.isdir(role):
            raise ConfigurationError(f"role {role!r} is not a directory")
        return
    if _FQCN.match(role):
        return  # namespace.collection.role: resolved from the installed collections
    if any(os.path.isdir(os.path.join(path, role)) for path in roles_path):
        return
    searched = ", ".join(roles_path) if roles_path else "(no roles paths: give roles_path)"
    raise ConfigurationError(
        f"role {role!r} not found; searched the roles paths "
        f"(project/roles, private_data_dir/roles, roles_path): {searched}"
    )


def _inventory(
    value: Any, private: PrivateData | None
) -> tuple[tuple[str, ...], Mapping[str, Any] | None, str | None]:
    """(paths for -i, data to write as YAML, INI text to write) from the inventory kwarg."""
    if value is None:
        default = private.inventory if private else None
        return ((default,) if default else ()), None, None
    if isinstance(value, Mapping):
        return (), dict(value), None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, list | tuple):
        if not value or not all(isinstance(item, str | os.PathLike) for item in value):
            raise ConfigurationError(
                f"inventory as a list must be a non-empty list of paths, not {value!r}"
            )
        paths = tuple(_inventory_path(os.fspath(item), private) for item in value)
        return paths, None, None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"inventory must be a path, a list of paths, a mapping or INI text, not {value!r}"
        )
    if "\n" in value.strip():
        return (), None, value  # INI text
    found = _find_inventory(value, private)
    if found is not None:
        return (found,), None, None
    if "," in value and not any(c.isspace() for c in value):
        return (value,), None, None  # a host list: "web1,web2," (Ansible's host_list plugin)
    if "/" in value:
        return (_inventory_path(value, private),), None, None  # raises: a path that is missing
    return (), None, value  # one line of INI text, e.g. "localhost ansible_connection=local"


def _find_inventory(value: str, private: PrivateData | None) -> str | None:
    for path in _inventory_candidates(value, private):
        if os.path.exists(path):
            return os.path.normpath(path)
    return None


def from_runner_layout(value: str, private_data_dir: str | None) -> str:
    """`/runner/<rest>` (ansible-runner's container path of the private data dir) as the
    host path `<private_data_dir>/<rest>`; any other path unchanged."""
    if private_data_dir is None or not value.startswith(RUNNER_ROOT + "/"):
        return value
    return os.path.join(private_data_dir, value.removeprefix(RUNNER_ROOT + "/"))


def _inventory_candidates(value: str, private: PrivateData | None) -> list[str]:
    if os.path.isabs(value):
        return [from_runner_layout(value, private.path if private else None)]
    if private is None:
        return [os.path.abspath(value)]
    return [os.path.join(private.path, "inventory", value), os.path.join(private.path, value)]


def _inventory_path(value: str, private: PrivateData | None) -> str:
    found = _find_inventory(value, private)
    if found is None:
        raise ConfigurationError(
            f"inventory {value!r} not found: looked for "
            f"{', '.join(_inventory_candidates(value, private))}"
        )
    return found


def _cmdline(given: Mapping[str, Any], private: PrivateData | None) -> tuple[str, ...]:
    value = given.get("cmdline")
    source = "cmdline"
    if value is None and private is not None and private.cmdline is not None:
        value, source = private.cmdline, os.path.join(private.env_dir, "cmdline")
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        if not all(isinstance(arg, str) for arg in value):
            raise ConfigurationError(f"cmdline must be a string or a list of strings: {value!r}")
        return tuple(value)
    if not isinstance(value, str):
        raise ConfigurationError(f"cmdline must be a string of arguments, not {value!r}")
    try:
        return tuple(shlex.split(value))
    except ValueError as exc:
        raise ConfigurationError(f"{source}: cannot split {value!r} into arguments: {exc}") from exc


def _tags(given: Mapping[str, Any], name: str) -> str | None:
    value = given.get(name)
    if isinstance(value, list | tuple):
        if not value or not all(isinstance(tag, str) and tag for tag in value):
            raise ConfigurationError(f"{name} must be a string or a list of tag names: {value!r}")
        return ",".join(value)
    return _optional_str(given, name)


def _forks(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"forks must be a whole number, not {value!r}")
    if value < 0:
        raise ConfigurationError(f"forks must not be negative (got {value})")
    return value or None  # 0: Ansible's default, as in ansible-runner


def _verbosity(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise ConfigurationError(f"verbosity must be a whole number from 0 to 5, not {value!r}")
    return value


def check_rotate(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"rotate_artifacts must be a whole number >= 0 (0 keeps all), not {value!r}"
        )
    return value


def _handlers(given: Mapping[str, Any]) -> Handlers:
    return Handlers(**check_handlers(given))
