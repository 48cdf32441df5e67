"""The image locks and the labels that name them: what `images list` and `images inspect` show.

scripts/build-images locks every input of the project's images in the recipe tree
(containerrunner/recipes/): `base/packages.lock` (`package=version` of each Debian package of
the base) and the Python locks `ee/requirements*.lock`, `network-ee/*.lock`
(`name==version --hash=sha256:H`). Each image carries labels with its recipe hash, its
ansible-core and collection versions and the sha256 of each lock it was built from
(`containerrunner.lock.<part>`; an image inherits its parent's lock labels), so a lock file
whose digest matches a label is exactly what is inside.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

RECIPE_LABEL = "containerrunner.recipe"
ANSIBLE_CORE_LABEL = "containerrunner.ansible-core"
COLLECTIONS_LABEL = "containerrunner.collections"
LOCK_LABEL_PREFIX = "containerrunner.lock."


# A Python distribution name (PEP 508) or a Debian package name, and a version of either.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~:_-]*")


class LockError(ValueError):
    """A lock file line that is not a pin (names the file and line)."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str | None  # None for a Debian package (pinned by version)


@dataclass(frozen=True)
class ImageLabels:
    recipe: str | None
    ansible_core: str | None
    collections: tuple[tuple[str, str], ...]
    locks: tuple[tuple[str, str], ...]  # (part, "sha256:..."), sorted by part


def parse_lock(text: str, source: str = "lock") -> list[Pin]:
    """The pins of a lock: `name==version --hash=sha256:H` (Python) or `package=version`
    (Debian) lines; `#` comments and blank lines are skipped."""
    pins: list[Pin] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        requirement, _, rest = line.partition(" ")
        if "==" in requirement:
            name, _, version = requirement.partition("==")
            digest = rest.strip().removeprefix("--hash=sha256:")
            if not rest.strip().startswith("--hash=sha256:") or not _is_sha256(digest):
                raise LockError(f"{where}: {name} has no --hash=sha256:<64 hex digits>")
        elif "=" in requirement and not rest:
            name, _, version = requirement.partition("=")
            digest = None
        else:
            raise LockError(f"{where}: not a pin (name==version --hash=sha256:H or name=version)")
        if not NAME_RE.fullmatch(name) or not VERSION_RE.fullmatch(version):
            raise LockError(f"{where}: a pin needs a name and a version: {line!r}")
        if name in seen:
            raise LockError(f"{where}: {name} is pinned twice")
        seen.add(name)
        pins.append(Pin(name, version, digest or None))
    return pins


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def lock_digest(path: Path) -> str:
    """The digest of a lock file as the image labels carry it."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def parse_labels(labels: Mapping[str, str] | None) -> ImageLabels:
    labels = labels or {}
    collections: list[tuple[str, str]] = []
    for item in labels.get(COLLECTIONS_LABEL, "").split(","):
        name, _, version = item.strip().partition("=")
        if name:
            collections.append((name, version))
    locks = sorted(
        (key.removeprefix(LOCK_LABEL_PREFIX), value)
        for key, value in labels.items()
        if key.startswith(LOCK_LABEL_PREFIX)
    )
    return ImageLabels(
        recipe=labels.get(RECIPE_LABEL) or None,
        ansible_core=labels.get(ANSIBLE_CORE_LABEL) or None,
        collections=tuple(collections),
        locks=tuple(locks),
    )


def short_digest(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def format_locks(locks: Iterable[tuple[str, str]]) -> str:
    """`base:1a2b3c4d5e6f,ee:...` (the parts and short digests), `-` for none."""
    return ",".join(f"{part}:{short_digest(digest)}" for part, digest in locks) or "-"


def format_collections(collections: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{name}={version}" for name, version in collections) or "-"


def find_lock(recipes: Path, digest: str) -> Path | None:
    """The lock file in the recipe tree whose digest is `digest`, if one is."""
    for path in sorted(recipes.glob("*/*.lock")):
        if lock_digest(path) == digest:
            return path
    return None
