"""The image locks: parsing, the committed lock files, the labels, and the build script's lock
functions (scripts/lib/locks.sh, run with bash on files made here)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from containerrunner.cli import imagelocks, images
from containerrunner.cli.args import parse_args

LOCKS_SH = images.RECIPES / "scripts" / "lib" / "locks.sh"
SHA = "a" * 64


def bash(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; . "{LOCKS_SH}"; {script}', "bash", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_parse_lock_python_and_debian_pins() -> None:
    text = f"# header\n\nansible-core==2.19.14 --hash=sha256:{SHA}\nlibc6=2.36-9+deb12u9\n"
    assert imagelocks.parse_lock(text) == [
        imagelocks.Pin("ansible-core", "2.19.14", SHA),
        imagelocks.Pin("libc6", "2.36-9+deb12u9", None),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("jinja2==3.1.6", "ee/requirements.lock line 2: jinja2 has no --hash=sha256"),
        ("jinja2==3.1.6 --hash=sha256:abc", "line 2: jinja2 has no --hash=sha256"),
        ("jinja2>=3", "line 2: a pin needs a name and a version"),
        ("jinja2 3.1", "line 2: not a pin"),
        (f"ansible-core==2.19.14 --hash=sha256:{SHA}", "line 2: ansible-core is pinned twice"),
        ("=1.0", "line 2: a pin needs a name and a version"),
    ],
)
def test_parse_lock_names_the_bad_line(line: str, message: str) -> None:
    text = f"ansible-core==2.19.14 --hash=sha256:{SHA}\n{line}\n"
    with pytest.raises(imagelocks.LockError, match=message.replace("+", r"\+")):
        imagelocks.parse_lock(text, "ee/requirements.lock")


def test_committed_locks_pin_every_package() -> None:
    python_locks = [
        "ee/requirements.lock",
        "ee/requirements-compat.lock",
        "network-ee/requirements.lock",
        "network-ee/ansible.lock",
    ]
    for rel in python_locks:
        pins = imagelocks.parse_lock((images.RECIPES / rel).read_text(), rel)
        assert pins, rel
        assert all(pin.sha256 for pin in pins), rel
        assert [p.name for p in pins] == sorted(p.name for p in pins), rel
    ee = {
        p.name: p.version
        for p in imagelocks.parse_lock((images.RECIPES / "ee/requirements.lock").read_text())
    }
    assert ee["ansible-core"] == "2.19.14"
    assert {"jinja2", "cryptography", "packaging", "pyyaml"} <= set(ee)  # transitive ones
    network = {
        p.name
        for p in imagelocks.parse_lock(
            (images.RECIPES / "network-ee/requirements.lock").read_text()
        )
    }
    assert "paramiko" in network
    assert not network & set(ee), "the network EE's lock leaves out the EE's pins"
    base = imagelocks.parse_lock((images.RECIPES / "base/packages.lock").read_text())
    names = {pin.name for pin in base}
    assert {"python3", "openssh-client", "tini", "libc6"} <= names
    assert all(pin.sha256 is None for pin in base)


def test_parse_labels_and_format() -> None:
    labels = imagelocks.parse_labels(
        {
            "containerrunner.recipe": "09d67cbae37064df",
            "containerrunner.ansible-core": "2.19.14",
            "containerrunner.collections": "ansible.netcommon=8.1.0,vyos.vyos=6.0.0",
            "containerrunner.lock.ee": "sha256:" + "1" * 64,
            "containerrunner.lock.base": "sha256:" + "2" * 64,
            "org.opencontainers.image.title": "network-ee",
        }
    )
    assert labels.recipe == "09d67cbae37064df"
    assert labels.ansible_core == "2.19.14"
    assert labels.collections == (("ansible.netcommon", "8.1.0"), ("vyos.vyos", "6.0.0"))
    assert labels.locks == (("base", "sha256:" + "2" * 64), ("ee", "sha256:" + "1" * 64))
    assert imagelocks.format_locks(labels.locks) == "base:222222222222,ee:111111111111"
    assert imagelocks.format_collections(labels.collections) == (
        "ansible.netcommon=8.1.0,vyos.vyos=6.0.0"
    )
    empty = imagelocks.parse_labels(None)
    assert (empty.recipe, empty.locks, imagelocks.format_locks(empty.locks)) == (None, (), "-")


def test_inspect_prints_the_packaged_lock_the_label_names() -> None:
    lock = images.RECIPES / "ee" / "requirements.lock"
    labels = imagelocks.parse_labels(
        {
            "containerrunner.ansible-core": "2.19.14",
            "containerrunner.lock.ee": imagelocks.lock_digest(lock),
            "containerrunner.lock.other": "sha256:" + "0" * 64,
        }
    )
    lines = images.inspect_lines("localhost/containerrunner-ee:latest", "podman", labels)
    assert "ansible-core: 2.19.14" in lines
    pins = imagelocks.parse_lock(lock.read_text())
    assert f"# lock ee: ee/requirements.lock ({len(pins)} packages)" in lines
    core = next(pin for pin in pins if pin.name == "ansible-core")
    assert f"ansible-core==2.19.14 --hash=sha256:{core.sha256}" in lines
    assert any("lock other" in line and "not among the packaged locks" in line for line in lines)


def test_lock_of_wheels_normalises_names_sorts_and_skips(tmp_path: Path) -> None:
    wheels = {
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl": b"yaml",
        "ansible_core-2.19.14-py3-none-any.whl": b"core",
        "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.whl": b"markup",
    }
    for name, data in wheels.items():
        (tmp_path / name).write_bytes(data)

    def pin(name: str, version: str, data: bytes) -> str:
        return f"{name}=={version} --hash=sha256:{hashlib.sha256(data).hexdigest()}"

    skip = tmp_path / "skip.lock"
    skip.write_text("# the EE's\n" + pin("markupsafe", "3.0.2", b"markup") + "\n")
    full = bash('lock_of_wheels "$1"', str(tmp_path))
    assert full.returncode == 0, full.stderr
    assert full.stdout.splitlines() == [
        pin("ansible-core", "2.19.14", b"core"),
        pin("markupsafe", "3.0.2", b"markup"),
        pin("pyyaml", "6.0.2", b"yaml"),
    ]
    added = bash('lock_of_wheels "$1" "$2"', str(tmp_path), str(skip))
    assert added.stdout.splitlines() == [
        pin("ansible-core", "2.19.14", b"core"),
        pin("pyyaml", "6.0.2", b"yaml"),
    ]


def _rootfs(path: Path, status: str) -> None:
    with tarfile.open(path, "w") as tar:
        data = status.encode()
        info = tarfile.TarInfo("./var/lib/dpkg/status")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_debian_manifest_lists_installed_packages(tmp_path: Path) -> None:
    _rootfs(
        tmp_path / "rootfs.tar",
        "Package: tini\nStatus: install ok installed\nVersion: 0.19.0-1\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 2.36-9+deb12u9\n",
    )
    proc = bash('debian_manifest "$1"', str(tmp_path / "rootfs.tar"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["libc6=2.36-9+deb12u9", "tini=0.19.0-1"]


def test_manifest_changes_names_package_and_both_versions(tmp_path: Path) -> None:
    locked = tmp_path / "packages.lock"
    locked.write_text("libc6=2.36-9+deb12u7\ntini=0.19.0-1\nzlib1g=1:1.2.13\n")
    same = tmp_path / "same"
    same.write_text("libc6=2.36-9+deb12u7\ntini=0.19.0-1\nzlib1g=1:1.2.13\n")
    new = tmp_path / "new"
    new.write_text("libc6=2.36-9+deb12u9\nnewpkg=1.0\nzlib1g=1:1.2.13\n")
    assert bash('manifest_changes "$1" "$2"', str(locked), str(same)).stdout == ""
    proc = bash('manifest_changes "$1" "$2"', str(locked), str(new))
    assert proc.stdout.splitlines() == [
        "libc6: locked 2.36-9+deb12u7, the mirror now gives 2.36-9+deb12u9",
        "newpkg: locked (none), the mirror now gives 1.0",
        "tini: locked 0.19.0-1, the mirror now gives (none)",
    ]


def test_build_argv_relock_verify_and_lock_command() -> None:
    argv = images.build_argv(parse_args(["images", "build", "--verify", "--engine", "podman"]))
    assert argv[2:] == ["--engine", "podman", "--verify"]
    argv = images.build_argv(parse_args(["images", "lock", "--engine", "podman"]))
    assert argv[2:] == ["--engine", "podman", "--relock"]
    argv = images.build_argv(parse_args(["images", "build", "--relock", "--force"]))
    assert argv[2:] == ["--engine", "both", "--force", "--relock"]


def test_build_script_refuses_verify_on_another_base() -> None:
    proc = subprocess.run(
        ["bash", str(images.BUILD_SCRIPT), "--verify", "--base-image", "python:3.11-slim"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "--verify" in proc.stderr and "--base-image" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_record_ids_replaces_only_the_verified_images(tmp_path: Path) -> None:
    ids = tmp_path / "expected-ids"
    ids.write_text(
        "# old header\n"
        "localhost/containerrunner-ee:latest x86_64 sha256:old\n"
        "localhost/containerrunner-ee:ansible-core-2.14 x86_64 sha256:compat\n"
        "localhost/containerrunner-ee:latest aarch64 sha256:arm\n"
    )
    proc = bash(
        'record_ids "$1" x86_64 "$2" "$3"',
        str(ids),
        "localhost/containerrunner-ee:latest sha256:new",
        "localhost/network-ee:latest sha256:net",
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert lines == [
        "localhost/containerrunner-ee:latest aarch64 sha256:arm",
        "localhost/containerrunner-ee:ansible-core-2.14 x86_64 sha256:compat",
        "localhost/containerrunner-ee:latest x86_64 sha256:new",
        "localhost/network-ee:latest x86_64 sha256:net",
    ]
    fresh = bash('record_ids "$1" x86_64 "$2"', str(tmp_path / "none"), "img sha256:x")
    assert [line for line in fresh.stdout.splitlines() if not line.startswith("#")] == [
        "img x86_64 sha256:x"
    ]
