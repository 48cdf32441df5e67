"""Registry credentials for a pull (ansible-runner's `container_auth_data`) on the CLI path:
a login into a private auth store that lives only for the pull. (Through the engine's API the
backends log in with `/auth` and pass the credentials in memory: api_docker, api_podman.)

The password goes to `<engine> login --password-stdin` on stdin: never in argv, the
environment, artifacts or logs. The auth store (podman `--authfile FILE`, docker `--config
DIR`) is a 0700 directory made beside the job's runtime dir and removed when the pull ends,
whatever the outcome; the user's own auth stores are not touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import EngineTimeoutError, RegistryLoginError
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
