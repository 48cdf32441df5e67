"""The exceptions containerrunner raises.

Every error says what was wrong and, where there is one, how to fix it. Library code raises
these; only the CLI turns them into a message and an exit code.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence


class ContainerRunnerError(Exception):
    """Base class of every error containerrunner raises on purpose."""


class ConfigurationError(ContainerRunnerError):
    """An option, keyword argument or input file is invalid; the message names it."""


class EngineError(ContainerRunnerError):
    """The container engine (podman or docker) is missing or does not work."""


class EngineTimeoutError(EngineError):
    """An engine command did not finish in time."""


class ImageNotFoundError(ContainerRunnerError):
    """The requested container image is not present in the engine's local store."""

    def __init__(self, image: str, engine: str) -> None:
        self.image = image
        self.engine = engine
        super().__init__(
            f"container image {image!r} is not in {engine}'s local image store; "
            f"build the project's images with `scripts/build-images` "
            f"(or `containerrunner images build`), or pull {image!r} with `{engine} pull`"
        )


class RegistryLoginError(ConfigurationError):
    """The registry refused the login (wrong credentials, unreachable, bad certificate)."""

    def __init__(self, host: str, engine: str, detail: str, via: str = "the CLI") -> None:
        self.host = host
        #: what refused it: "the CLI" (`<engine> login`) or the engine's API (`/auth`)
        self.via = via
        super().__init__(f"{engine} login to registry {host!r} failed: {detail}")


class CredentialHelperError(RegistryLoginError):
    """A credential helper (`docker-credential-NAME`, from a `credHelpers`/`credsStore`
    entry) for a registry is missing or failed: names the helper and the registry."""

    def __init__(self, helper: str, host: str, engine: str, via: str, detail: str) -> None:
        self.host = host
        self.via = via
        self.helper = helper
        ConfigurationError.__init__(
            self,
            f"{engine} pull: credential helper {helper} for registry {host!r} failed "
            f"({via}): {detail}",
        )


class ArtifactWriteError(ContainerRunnerError):
    """The job's artifacts could not be written (the disk is full, the dir went away): the
    job is stopped and ends `failed`. Carries the artifacts dir and the OSError."""

    def __init__(self, directory: object, what: str, error: OSError) -> None:
        self.directory = str(directory)
        self.error = error
        super().__init__(
            f"cannot write {what} in {self.directory}: {error.strerror or error} (free some "
            "space there, or give another artifact_dir); the job's status is failed"
        )


class OutputParseError(ContainerRunnerError):
    """A command's output could not be parsed as the format that was asked for."""

    def __init__(self, message: str, raw: str) -> None:
        self.raw = raw
        super().__init__(f"{message}; raw output starts with: {raw[:200]!r}")


def describe_returncode(rc: int) -> str:
    """'rc 2' or, for a negative code, the name of the signal that ended the process."""
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"rc {rc}"


class CommandError(ContainerRunnerError):
    """A command that had to succeed did not; carries argv, rc and the tail of stderr."""

    def __init__(self, argv: Sequence[str], rc: int, stderr_tail: str = "") -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stderr_tail = stderr_tail
        detail = f": {stderr_tail.strip()}" if stderr_tail.strip() else ""
        super().__init__(f"`{' '.join(self.argv)}` failed ({describe_returncode(rc)}){detail}")


class PullError(CommandError):
    """An image pull through the engine's API failed: the engine's message, naming the
    image (a CommandError, as a failed `<engine> pull` is)."""

    def __init__(self, engine: str, image: str, via: str, detail: str) -> None:
        self.image = image
        self.via = via
        self.argv = [engine, "pull", image]
        self.rc = 1
        self.stderr_tail = detail
        ContainerRunnerError.__init__(self, f"{engine} pull {image} failed ({via}): {detail}")


class StreamError(ContainerRunnerError):
    """A transmit/worker/process job stream is truncated, corrupt or too large; the message
    says which line or payload and what was wrong with it."""
