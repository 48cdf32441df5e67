"""The private data dir reader (ansible-runner's layout).

```
private_data_dir/
  env/extravars      mapping of variable: value          (YAML or JSON)
  env/passwords      mapping of prompt regex: answer     (YAML or JSON)
  env/envvars        mapping of NAME: value              (YAML or JSON)
  env/settings       mapping of runner settings          (YAML or JSON)
  env/cmdline        extra command line arguments        (plain text, shell quoting)
  env/ssh_key        a private key                       (plain text)
  inventory          an inventory file or directory
  project/           playbooks; roles under project/roles
  artifacts/<ident>/ what a run leaves behind (written by the runner, not here)
```

`read_private_data_dir` only reads. Unlike ansible-runner, nothing is ever written back into
`env/`: keyword arguments are merged over these files in memory (see `config/run.py`), so a
secret given once as a keyword argument is never left on disk to be reused by a later run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from containerrunner.errors import ConfigurationError
from containerrunner.validate import as_env, as_str_tuple, as_timeout, kind, parse_passwords

ENV_FILES: tuple[str, ...] = ("extravars", "passwords", "envvars", "settings", "cmdline", "ssh_key")


@dataclass(frozen=True)
class Settings:
    """The keys of `env/settings` containerrunner honours; None means "not set"."""

    idle_timeout: float | None = None
    job_timeout: float | None = None
    pexpect_timeout: float | None = None  # seconds between cancel_callback calls
    pexpect_use_poll: bool | None = None  # true only: containerrunner always waits with epoll
    suppress_ansible_output: bool | None = None
    suppress_output_file: bool | None = None
    fact_cache: str | None = None
    fact_cache_type: str | None = None
    process_isolation: bool | None = None
    process_isolation_executable: str | None = None
    container_image: str | None = None
    container_options: tuple[str, ...] | None = None
    container_network: str | None = None
    container_volume_mounts: tuple[str, ...] | None = None

    def merged_over(self, base: Settings) -> Settings:
        """These settings where set, `base` elsewhere (key by key)."""
        values = {
            f.name: getattr(self, f.name)
            if getattr(self, f.name) is not None
            else getattr(base, f.name)
            for f in fields(self)
        }
        return Settings(**values)


SETTINGS_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Settings))


@dataclass(frozen=True)
class PrivateData:
    """What a private data dir holds; empty values where a file is absent."""

    path: str
    extravars: Mapping[str, Any] = field(default_factory=dict)
    passwords: Mapping[str, str] = field(default_factory=dict)
    envvars: Mapping[str, str] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)
    cmdline: str | None = None
    ssh_key: str | None = None
    inventory: str | None = None  # private_data_dir/inventory when it exists (file or dir)
    project_dir: str | None = None  # private_data_dir/project when it is a directory

    @property
    def env_dir(self) -> str:
        return os.path.join(self.path, "env")

    @property
    def artifacts_dir(self) -> str:
        return os.path.join(self.path, "artifacts")


def read_private_data_dir(path: str) -> PrivateData:
    """Read `path`'s env/ files, and find its inventory and project dir.

    A missing private data dir or missing files are fine (empty values); a file that is not
    valid YAML/JSON or has the wrong shape raises ConfigurationError naming the file.
    """
    root = os.path.abspath(path)
    if not os.path.exists(root):
        return PrivateData(path=root)
    if not os.path.isdir(root):
        raise ConfigurationError(f"private_data_dir {root!r} is not a directory")
    env_dir = os.path.join(root, "env")

    def env_file(name: str) -> str:
        return os.path.join(env_dir, name)

    extravars_text = _read_text(env_file("extravars"))
    passwords_text = _read_text(env_file("passwords"))
    envvars_text = _read_text(env_file("envvars"))
    settings_text = _read_text(env_file("settings"))
    cmdline = _read_text(env_file("cmdline"))
    ssh_key = _read_text(env_file("ssh_key"))

    extravars = (
        parse_extravars(_load_mapping(extravars_text, env_file("extravars")), env_file("extravars"))
        if extravars_text is not None
        else {}
    )
    passwords = (
        parse_passwords(_load_mapping(passwords_text, env_file("passwords")), env_file("passwords"))
        if passwords_text is not None
        else {}
    )
    envvars = (
        as_env(_load_mapping(envvars_text, env_file("envvars")), env_file("envvars"))
        if envvars_text is not None
        else {}
    )
    settings = (
        parse_settings(_load_mapping(settings_text, env_file("settings")), env_file("settings"))
        if settings_text is not None
        else Settings()
    )
    inventory = os.path.join(root, "inventory")
    project = os.path.join(root, "project")
    return PrivateData(
        path=root,
        extravars=extravars,
        passwords=passwords,
        envvars=envvars,
        settings=settings,
        cmdline=cmdline if cmdline and cmdline.strip() else None,
        ssh_key=ssh_key if ssh_key and ssh_key.strip() else None,
        inventory=inventory if os.path.exists(inventory) else None,
        project_dir=project if os.path.isdir(project) else None,
    )


def parse_extravars(value: Any, source: str) -> dict[str, Any]:
    """Extra variables: a mapping with string keys. `source` names the file or option."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{source} must be a mapping of variable: value, not {kind(value)}"
        )
    for key in value:
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"{source}: variable names must be strings, not {key!r}")
    return dict(value)


def parse_settings(value: Any, source: str) -> Settings:
    """Runner settings: a mapping whose keys are those of `Settings`; values type-checked."""
    if value is None:
        return Settings()
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{source} must be a mapping of setting: value, not {kind(value)}")
    unknown = [key for key in value if key not in SETTINGS_KEYS]
    if unknown:
        raise ConfigurationError(
            f"{source}: unknown setting {', '.join(repr(k) for k in unknown)}; "
            f"valid settings are: {', '.join(SETTINGS_KEYS)}"
        )

    def where(key: str) -> str:
        return f"{source}: {key}"

    def boolean(key: str) -> bool | None:
        val = value.get(key)
        if val is None or isinstance(val, bool):
            return val
        raise ConfigurationError(f"{where(key)} must be true or false, not {val!r}")

    def string(key: str) -> str | None:
        val = value.get(key)
        if val is None:
            return None
        if not isinstance(val, str) or not val:
            raise ConfigurationError(f"{where(key)} must be a non-empty string, not {val!r}")
        return val

    def strings(key: str) -> tuple[str, ...] | None:
        val = value.get(key)
        return None if val is None else as_str_tuple(val, where(key))

    def seconds(key: str) -> float | None:
        val = value.get(key)
        return None if val is None else as_timeout(val, where(key))

    pexpect_timeout = value.get("pexpect_timeout")
    if pexpect_timeout is not None and (
        isinstance(pexpect_timeout, bool)
        or not isinstance(pexpect_timeout, int | float)
        or pexpect_timeout <= 0
    ):
        raise ConfigurationError(
            f"{where('pexpect_timeout')} must be a positive number of seconds, "
            f"not {pexpect_timeout!r}"
        )
    if value.get("pexpect_use_poll") is False:
        raise ConfigurationError(
            f"{where('pexpect_use_poll')}: false (select()) is not supported: containerrunner "
            "always waits with epoll, as pexpect_use_poll: true does; remove the key"
        )
    return Settings(
        idle_timeout=seconds("idle_timeout"),
        job_timeout=seconds("job_timeout"),
        pexpect_timeout=float(pexpect_timeout) if pexpect_timeout is not None else None,
        pexpect_use_poll=boolean("pexpect_use_poll"),
        suppress_ansible_output=boolean("suppress_ansible_output"),
        suppress_output_file=boolean("suppress_output_file"),
        fact_cache=string("fact_cache"),
        fact_cache_type=string("fact_cache_type"),
        process_isolation=boolean("process_isolation"),
        process_isolation_executable=string("process_isolation_executable"),
        container_image=string("container_image"),
        container_options=strings("container_options"),
        container_network=string("container_network"),
        container_volume_mounts=strings("container_volume_mounts"),
    )


def _read_text(path: str) -> str | None:
    """The file's text, or None if it does not exist."""
    if not os.path.lexists(path):
        return None
    if os.path.isdir(path):
        raise ConfigurationError(f"{path} is a directory; it must be a file")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _load_mapping(text: str, path: str) -> Any:
    """Parse `text` as JSON, else YAML; a syntax error names the file and line.

    Returns the parsed value (None for an empty file); the caller checks its shape.
    """
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_exc:
        json_error = json_exc
    import yaml  # deferred: only a file that is not JSON pays its import

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as yaml_exc:
        if text.lstrip().startswith(("{", "[")):
            raise ConfigurationError(
                f"{path}, line {json_error.lineno} column {json_error.colno}: "
                f"invalid JSON: {json_error.msg}"
            ) from json_error
        mark = getattr(yaml_exc, "problem_mark", None)
        problem = getattr(yaml_exc, "problem", None) or str(yaml_exc)
        if mark is not None:
            raise ConfigurationError(
                f"{path}, line {mark.line + 1} column {mark.column + 1}: invalid YAML: {problem}"
            ) from yaml_exc
        raise ConfigurationError(f"{path}: invalid YAML: {problem}") from yaml_exc
