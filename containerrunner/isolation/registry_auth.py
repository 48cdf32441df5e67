"""Registry credentials for a pull (ansible-runner's `container_auth_data`) on the CLI path:
a login into a private auth store that lives only for the pull. (Through the engine's API the
backends log in with `/auth` and pass the credentials in memory: api_docker, api_podman.)

Without `container_auth_data`, an API pull uses what the engine's CLI would find for the
image's registry: `auth_file_credentials` (podman: REGISTRY_AUTH_FILE, its `credHelpers`
entry's helper, else its `auths` entry); docker's SDK does the same with the docker config
(`credHelpers`, `credsStore`, `auths`) by itself. A helper is run through the docker SDK's
`docker.credentials.Store` (`docker-credential-NAME get`, the registry on stdin, the JSON
`{"Username", "Secret"}` on stdout): its answer stays in memory.

The password goes to `<engine> login --password-stdin` on stdin: never in argv, the
environment, artifacts or logs. The auth store (podman `--authfile FILE`, docker `--config
DIR`) is a 0700 directory made beside the job's runtime dir and removed when the pull ends,
whatever the outcome; the user's own auth stores are not touched.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import CredentialHelperError, EngineTimeoutError, RegistryLoginError
from containerrunner.isolation.engine import Engine, run_engine

LOGIN_TIMEOUT = 120.0


@dataclass(frozen=True)
class PullLogin:
    """What a pull adds to use the login: options before the subcommand (docker
    `--config DIR`) and options of `pull` itself (podman `--authfile`, `--tls-verify`)."""

    global_args: tuple[str, ...] = ()
    pull_args: tuple[str, ...] = ()


def _store_args(engine: Engine, store: str, auth: RegistryAuth) -> PullLogin:
    if engine.name == "docker":
        # docker has no per-call TLS switch: verify_ssl=False needs the daemon's
        # insecure-registries (as with ansible-runner)
        return PullLogin(global_args=("--config", store))
    tls = () if auth.verify_ssl else ("--tls-verify=false",)
    return PullLogin(pull_args=("--authfile", os.path.join(store, "auth.json"), *tls))


def _detail(stderr: str, password: str) -> str:
    lines = [line.strip() for line in stderr.replace(password, "***").splitlines() if line.strip()]
    return lines[-1][-500:] if lines else "no reason given"


@contextlib.contextmanager
def logged_in(engine: Engine, auth: RegistryAuth, parent: str | None) -> Iterator[PullLogin]:
    """Log in to `auth.host` into a private 0700 store made under `parent` (where the job's
    runtime dir will be: the temp dir, or a warm session's runtime dir) for the block; the
    store is removed afterwards, whatever happens.

    Raises RegistryLoginError naming the registry when the login is refused.
    """
    store = tempfile.mkdtemp(prefix="cr-registry-auth-", dir=parent)
    try:
        os.chmod(store, 0o700)
        login = _store_args(engine, store, auth)
        args = [
            *login.global_args,
            "login",
            *login.pull_args,
            "--username",
            auth.username,
            "--password-stdin",
            auth.host,
        ]
        try:
            proc = run_engine(engine, args, LOGIN_TIMEOUT, stdin_text=auth.password)
        except EngineTimeoutError as exc:
            raise RegistryLoginError(
                auth.host, engine.name, f"no answer within {LOGIN_TIMEOUT:g} s"
            ) from exc
        if proc.returncode != 0:
            raise RegistryLoginError(auth.host, engine.name, _detail(proc.stderr, auth.password))
        yield login
    finally:
        shutil.rmtree(store, ignore_errors=True)


# ------------------------------------------------------------------ API pulls: the CLI's lookup
HELPER_PREFIX = "docker-credential-"
#: what a helper answers as Username for an identity token (docker-credential-helpers)
TOKEN_USERNAME = "<token>"


def repository_of(image: str) -> str:
    """`host/path/name` of `image` (docker.io for a name without a registry part)."""
    name = image.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        return f"docker.io/{name}"
    return name.rsplit(":", 1)[0] if ":" in name.rpartition("/")[2] else name


def helper_credentials(helper: str, registry: str, engine: str, via: str) -> dict[str, str] | None:
    """What credential helper `docker-credential-<helper>` answers for `registry`
    (`username`/`password`, or `identitytoken` for a token), None when it has none;
    CredentialHelperError naming the helper and the registry when it is missing or fails.
    Run through the docker SDK's `docker.credentials.Store`; nothing is written anywhere."""
    import docker.credentials

    program = HELPER_PREFIX + helper
    if not helper or shutil.which(program) is None:
        raise CredentialHelperError(program, registry, engine, via, "not found on PATH")
    try:
        answer = docker.credentials.Store(helper).get(registry)
    except docker.credentials.CredentialsNotFound:
        return None
    except docker.credentials.StoreError as exc:
        raise CredentialHelperError(program, registry, engine, via, str(exc)) from exc
    except (ValueError, TypeError, KeyError) as exc:  # not the protocol's JSON object
        raise CredentialHelperError(
            program,
            registry,
            engine,
            via,
            f"its answer is not the JSON {{Username, Secret}}: {exc}",
        ) from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("Secret"), str):
        raise CredentialHelperError(
            program, registry, engine, via, "its answer has no Secret string"
        )
    username = str(answer.get("Username") or "")
    if username == TOKEN_USERNAME:
        return {"identitytoken": answer["Secret"]}
    return {"username": username, "password": answer["Secret"]}


def _auths_entry(auths: Any, repository: str) -> dict[str, str] | None:
    """The `auths` entry for `repository`: the longest key that is its registry or a
    namespace of it; its base64 `user:password`."""
    best: tuple[int, Any] | None = None
    for key, entry in auths.items() if isinstance(auths, dict) else ():
        scope = str(key).removeprefix("https://").removeprefix("http://").rstrip("/")
        if (repository == scope or repository.startswith(scope + "/")) and (
            best is None or len(scope) > best[0]
        ):
            best = (len(scope), entry)
    if best is None or not isinstance(best[1], dict):
        return None
    try:
        username, _, password = (
            base64.b64decode(str(best[1].get("auth", ""))).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not username:
        return None
    return {"username": username, "password": password}


def auth_file_credentials(
    image: str, engine: str = "podman", via: str = "the podman API"
) -> dict[str, str] | None:
    """The credentials the podman CLI would use for `image` from `REGISTRY_AUTH_FILE`
    (containers-auth.json(5)), or None: no such variable, file or entry.

    A `credHelpers` entry for the image's registry host wins (as in containers/image): its
    helper's answer (`helper_credentials`; CredentialHelperError when it is missing or fails;
    None when it has nothing for the registry); else the `auths` entry (`_auths_entry`). The
    service itself reads only its default auth file (the CLI's default when
    REGISTRY_AUTH_FILE is unset, helpers included), so this sends the CLI's credentials in
    the request (X-Registry-Auth, in memory over the socket)."""
    path = os.environ.get("REGISTRY_AUTH_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            content = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict):
        return None
    repository = repository_of(image)
    helpers = content.get("credHelpers")
    registry = repository.split("/", 1)[0]
    if isinstance(helpers, dict) and registry in helpers:
        return helper_credentials(str(helpers[registry] or ""), registry, engine, via)
    return _auths_entry(content.get("auths") or {}, repository)
