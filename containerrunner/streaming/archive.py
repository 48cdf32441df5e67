"""Directories as zip payloads of the job stream, and their safe unpacking.

`zip_dir` packs a directory as ansible-runner 2.4.3 does (relative names, file modes kept,
symlinks as links, FIFOs skipped). `unzip_into` unpacks a payload only inside its target: a
member with an absolute name or one that climbs out with `..`, a symlink pointing outside the
target, a file written through a symlink, or more bytes than the bound raise `StreamError`
naming the member; set-id bits are dropped. (ansible-runner's unpacking follows symlinks it has
just created and trusts the names it gets.)
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import zipfile
from collections.abc import Collection
from pathlib import Path

from containerrunner.errors import StreamError

#: Largest total size of the files a payload may unpack to unless told otherwise.
DEFAULT_MAX_UNPACKED = 1024 * 1024 * 1024


def zip_dir(source: str | os.PathLike[str], skip: Collection[str] = ()) -> bytes:
    """The zip of everything under `source`; `skip` names top-level entries left out."""
    root = Path(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True, strict_timestamps=False
    ) as archive:
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if here == root:
                dirnames[:] = [d for d in dirnames if d not in skip]
                filenames = [f for f in filenames if f not in skip]
            for name in sorted(dirnames + filenames):
                add_member(archive, here / name, (here / name).relative_to(root).as_posix())
    return buffer.getvalue()


def add_member(archive: zipfile.ZipFile, path: Path, arcname: str) -> None:
    """Add `path` as `arcname`: a symlink as a link, a dir or regular file as itself."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        member = zipfile.ZipInfo(arcname)
        member.create_system = 3
        member.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(member, os.readlink(path))
    elif stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
        archive.write(path, arcname)
    # FIFOs, sockets and devices are not data: skipped, as ansible-runner skips FIFOs


def _inside(target: Path, name: str) -> Path:
    """`target/name`, refusing a name that is absolute or climbs out of `target`."""
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../") or "\0" in name:
        raise StreamError(f"zip payload member {name!r} points outside the directory it fills")
    return target / normal


def _through_link(target: Path, path: Path) -> bool:
    """Whether any parent of `path` below `target` is a symlink (written through, it escapes)."""
    for parent in path.relative_to(target).parents:
        if parent != Path(".") and (target / parent).is_symlink():
            return True
    return False


def unzip_into(
    payload: bytes, target: str | os.PathLike[str], max_unpacked: int = DEFAULT_MAX_UNPACKED
) -> None:
    """Unpack the zip `payload` into the directory `target` (made if missing)."""
    root = Path(target)
    root.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as exc:
        raise StreamError(f"zip payload is not a zip file: {exc}") from None
    with archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > max_unpacked:
            raise StreamError(
                f"zip payload unpacks to {total} bytes, more than the bound of {max_unpacked}"
            )
        for member in members:
            _extract(archive, member, root)


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, root: Path) -> None:
    path = _inside(root, member.filename)
    if _through_link(root, path):
        raise StreamError(f"zip payload member {member.filename!r} is written through a symlink")
    mode = member.external_attr >> 16
    try:
        data = archive.read(member)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # CRC error, bad compression
        raise StreamError(f"zip payload member {member.filename!r} is corrupt: {exc}") from None
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    if stat.S_ISLNK(mode):
        link = data.decode("utf-8", "replace")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member.filename), link))
        if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise StreamError(
                f"zip payload symlink {member.filename!r} -> {link!r} points outside the "
                "directory it fills"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link, path)
        return
    if member.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    permissions = stat.S_IMODE(mode) & 0o777 if mode else 0o600
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(path, permissions or 0o600)
