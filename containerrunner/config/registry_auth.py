"""`container_auth_data` (ansible-runner's `{host, username, password, verify_ssl}`): the
registry credentials for a pull, validated. Used by isolation/registry_auth.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from containerrunner.errors import ConfigurationError

AUTH_KEYS = ("host", "username", "password", "verify_ssl")


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry; the password is left out of repr()."""

    host: str
    username: str
    password: str = field(repr=False)
    verify_ssl: bool = True

    @classmethod
    def from_value(cls, value: Any) -> RegistryAuth | None:
        """Validate a `container_auth_data` value (None: no login); errors name the key."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"container_auth_data must be a mapping with {', '.join(AUTH_KEYS)}, "
                f"not {type(value).__name__}"
            )
        unknown = sorted(set(value) - set(AUTH_KEYS))
        if unknown:
            raise ConfigurationError(
                f"container_auth_data has unknown keys {', '.join(map(str, unknown))}; "
                f"expected {', '.join(AUTH_KEYS)}"
            )
        for key in ("host", "username", "password"):
            item = value.get(key)
            if (
                not isinstance(item, str)
                or not item
                or (key != "password" and item.strip() != item)
            ):
                raise ConfigurationError(f"container_auth_data[{key!r}] must be a non-empty string")
        verify = value.get("verify_ssl", True)
        if not isinstance(verify, bool):
            raise ConfigurationError("container_auth_data['verify_ssl'] must be True or False")
        return cls(value["host"], value["username"], value["password"], verify)
