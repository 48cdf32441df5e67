"""Image presence, pull policy and provenance: the image query and the pull go through the
engine client (`client.py`: the engine's API when connected, else its CLI, subprocess, no
shell). A pull reports its steps as PullProgress items to the listener given, or to the one
`pull_progress_to` set for this thread/context (the Runner's `pull_progress_handler`)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import threading
from collections.abc import Iterator

from containerrunner.config.registry_auth import RegistryAuth
from containerrunner.errors import CommandError, ImageNotFoundError
from containerrunner.isolation.client import client_for
from containerrunner.isolation.client_types import ImageInfo, normalise_id
from containerrunner.isolation.engine import Engine, known_version, parse_version, run_engine
from containerrunner.isolation.pulls import PullListener

QUERY_TIMEOUT = 60.0
PULL_TIMEOUT = 1800.0


_listener: contextvars.ContextVar[PullListener | None] = contextvars.ContextVar(
    "containerrunner_pull_listener", default=None
)


@contextlib.contextmanager
def pull_progress_to(listener: PullListener | None) -> Iterator[None]:
    """Pulls made in this context (thread) report their PullProgress items to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")


def is_image_id(image: str) -> bool:
    """True for a bare image ID (`sha256:<hex>`, or 12 to 64 hex digits as the engines print)."""
    return _IMAGE_ID.fullmatch(image) is not None


def is_pinned(image: str) -> bool:
    """True for a reference pinned to content: `name@sha256:<digest>` or a bare image ID."""
    return "@sha256:" in image or is_image_id(image)


def pin_matches(image: str, image_id: str | None) -> bool | None:
    """Whether the local image ID `image_id` (see `image_digest`) is the content `image` pins:
    None for an unpinned reference. A bare ID must be a prefix of the ID; a digest reference
    only resolves locally to an image carrying that digest, so any ID found matches."""
    if not is_pinned(image):
        return None
    if image_id is None:
        return False
    if is_image_id(image):
        return normalise_id(image_id).startswith(normalise_id(image))
    return True


def image_exists(engine: Engine, image: str, timeout: float = QUERY_TIMEOUT) -> bool:
    """True when `image` is in the engine's local store (`<engine> image inspect`)."""
    return image_digest(engine, image, timeout) is not None


def pull_image(
    engine: Engine,
    image: str,
    timeout: float = PULL_TIMEOUT,
    auth: RegistryAuth | None = None,
    auth_dir: str | None = None,
    listener: PullListener | None = None,
) -> None:
    """Pull `image` (the engine's API when connected, else `<engine> pull`; logged in with
    `auth` when given, see `EngineClient.pull`), its steps to `listener` (else the context's,
    see `pull_progress_to`); raises CommandError (with the engine's message) when it fails,
    RegistryLoginError when the registry refuses the login."""
    client_for(engine).pull(image, listener or _listener.get(), timeout, auth, auth_dir)


def ensure_image(
    engine: Engine,
    image: str,
    policy: str,
    timeout: float | None = None,
    auth: RegistryAuth | None = None,
    auth_dir: str | None = None,
    listener: PullListener | None = None,
) -> str | None:
    """Make `image` available according to the pull policy, each engine call within
    `timeout` s when given (EngineTimeoutError after it); returns its image ID (see
    `image_digest`; None only if the engine lost it right after a pull). Without a pull this
    is one engine call.

    - `never`: must be present.
    - `missing`: pulled when absent.
    - `always`: pulled every time (a failed pull is an error), except a digest-pinned ref
      that is present (its content cannot change).
    - `newer`: pulled unless it is a present digest-pinned ref; a failed pull is ignored when
      a local copy exists (podman's semantics).
    With `auth` (container_auth_data) a pull first logs in to that registry: through the
    API with the credentials in memory, else (the CLI) into a private auth store under
    `auth_dir` (the runtime dirs' parent), removed after the pull. A pull's steps go to
    `listener` (PullProgress), else to the context's (`pull_progress_to`).
    Raises ImageNotFoundError when the image is absent and cannot be pulled, EngineError
    when the engine does not answer, RegistryLoginError when the registry refuses the login.
    The image query (`image_info`: absent, or present with its ID) is one engine call, and
    an engine that does not answer is told from an absent image by that call itself.
    """
    if policy not in ("always", "missing", "never", "newer"):
        raise ValueError(f"unknown pull policy {policy!r}")
    query_timeout = min(QUERY_TIMEOUT, timeout or QUERY_TIMEOUT)
    present_id = image_digest(engine, image, query_timeout)
    present = present_id is not None
    if present and (policy in ("missing", "never") or is_pinned(image)):
        return present_id
    if not present and policy == "never":
        raise ImageNotFoundError(image, engine.name)
    pull_timeout = min(PULL_TIMEOUT, timeout or PULL_TIMEOUT)
    try:
        pull_image(engine, image, pull_timeout, auth, auth_dir, listener)
    except CommandError as exc:
        if not present:
            raise ImageNotFoundError(image, engine.name) from exc
        if policy == "always":
            raise
    return image_digest(engine, image, query_timeout)


#: the exit status of `<engine> run` when the engine could not run the container (podman's
#: and docker's alike): an absent image under `--pull=never`, a dead engine, a bad option
ENGINE_RUN_FAILED = 125


def starts_at_once(policy: str, image: str) -> bool:
    """Whether the pull policy lets a job start `<engine> run --pull=never` at once, with the
    image query alongside it (`ImageQuery`) instead of before it: the policy pulls nothing
    when the image is present. True for `never` and `missing`, and for a pinned reference
    under `always` or `newer` (present pinned content is never pulled, see `ensure_image`);
    an unpinned `always`/`newer` pulls first, so it keeps the query before the start."""
    if policy not in ("always", "missing", "never", "newer"):
        raise ValueError(f"unknown pull policy {policy!r}")
    return policy in ("missing", "never") or is_pinned(image)


class ImageQuery:
    """`image_info(engine, image)` asked in a thread from construction on, so that a job's
    container starts while it is answered (the optimistic start, runner.py); `result()`
    joins it and gives what the query gave (ImageInfo, None when absent) or raises what it
    raised (EngineError: the engine does not answer; EngineTimeoutError after `timeout`)."""

    def __init__(self, engine: Engine, image: str, timeout: float = QUERY_TIMEOUT) -> None:
        self.engine = engine
        self.image = image
        self._timeout = timeout
        self._info: ImageInfo | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=self._ask, name="containerrunner-image-query", daemon=True
        )
        self._thread.start()

    def _ask(self) -> None:
        try:
            self._info = image_info(self.engine, self.image, self._timeout)
        except Exception as exc:  # given to the job's thread by result()
            self._error = exc

    def result(self) -> ImageInfo | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._info


def image_info(engine: Engine, image: str, timeout: float = QUERY_TIMEOUT) -> ImageInfo | None:
    """The local image `image` (ID, labels, RepoDigests) in one query, None when absent;
    EngineError when the engine does not answer. On a job's start path: through the engine's
    API only when this process is connected to it already, else the CLI (client.py)."""
    return client_for(engine).image(image, timeout, connect=False)


def image_digest(engine: Engine, image: str, timeout: float = QUERY_TIMEOUT) -> str | None:
    """The local image ID (`sha256:<hex>`, the same form for both engines), or None when the
    image is absent (EngineError when the engine does not answer). The ID identifies the
    content: the project's reproducible builds give the same ID on every machine."""
    info = image_info(engine, image, timeout)
    return info.id if info is not None else None


_VERSION_LOCK = threading.Lock()
_VERSION_ASKS: dict[Engine, threading.Thread] = {}


def prefetch_engine_version(engine: Engine) -> None:
    """Start asking `engine_version` in a thread, so that the `--version` round trip runs
    alongside the job's image query instead of after it; `engine_version` waits for it."""
    if known_version(engine.executable) is not None:
        return
    with _VERSION_LOCK:
        if engine not in _VERSION_ASKS:  # started under the lock: never joined unstarted
            ask = threading.Thread(target=_prefetch, args=(engine,), daemon=True)
            ask.start()
            _VERSION_ASKS[engine] = ask


def _prefetch(engine: Engine) -> None:
    with contextlib.suppress(Exception):  # engine_version asks again and raises it
        _asked_version(engine)


def engine_version(engine: Engine) -> str:
    """The engine's version, e.g. `4.3.1`: the client version `detect_engine`'s probe saw,
    else from `<engine> --version` (no daemon needed; started early by
    `prefetch_engine_version` on a job's start path).

    Asked once per engine and process: every job records it in its provenance.
    """
    with _VERSION_LOCK:
        ask = _VERSION_ASKS.get(engine)
    if ask is not None:
        ask.join()
    return _asked_version(engine)


@functools.cache
def _asked_version(engine: Engine) -> str:
    known = known_version(engine.executable)
    if known is not None:
        return known
    proc = run_engine(engine, ["--version"], QUERY_TIMEOUT)
    if proc.returncode != 0:
        raise CommandError(engine.command("--version"), proc.returncode, proc.stderr[-2000:])
    return parse_version(proc.stdout)
