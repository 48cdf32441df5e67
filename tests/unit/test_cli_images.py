"""The image recipes ship in the package, and `images build` runs the packaged script."""

from __future__ import annotations

import subprocess
from pathlib import Path

from containerrunner.cli import images
from containerrunner.cli.args import parse_args

REPO = Path(__file__).resolve().parents[2]


def test_recipes_are_in_the_package() -> None:
    recipes = images.RECIPES
    for rel in (
        "ee/Containerfile",
        "base/Containerfile",
        "base/packages",
        "base/packages.lock",
        "ee/requirements.lock",
        "ee/requirements-compat.lock",
        "network-ee/requirements.lock",
        "network-ee/ansible.lock",
        "scripts/lib/locks.sh",
        "network-ee/Containerfile",
        "network-ee/collections",
        "scripts/build-images",
        "scripts/setup-engine",
        "scripts/lib/common.sh",
    ):
        assert (recipes / rel).is_file(), rel


def test_packaged_recipes_match_the_source_tree() -> None:
    pairs = {
        "ee/Containerfile": "Containerfile",
        "base/Containerfile": "images/base/Containerfile",
        "base/packages": "images/base/packages",
        "network-ee/Containerfile": "images/network-ee/Containerfile",
        "network-ee/collections": "images/network-ee/collections",
    }
    for packaged, source in pairs.items():
        if not (REPO / source).exists():
            continue  # an installed package without the source tree
        assert (images.RECIPES / packaged).read_bytes() == (REPO / source).read_bytes(), source


def test_build_argv() -> None:
    args = parse_args(
        ["images", "build", "--engine", "podman", "--force", "--base-image", "python:3.11-slim"]
    )
    argv = images.build_argv(args)
    assert argv[1:] == [
        str(images.BUILD_SCRIPT),
        "--base-image",
        "python:3.11-slim",
        "--engine",
        "podman",
        "--force",
    ]
    assert images.build_argv(parse_args(["images", "build"]))[2:] == ["--engine", "both"]


def test_packaged_build_script_help() -> None:
    proc = subprocess.run(
        ["bash", str(images.BUILD_SCRIPT), "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "--print-hashes" in proc.stdout


def test_repository_name() -> None:
    assert images._repository_name("localhost/network-ee:latest") == "network-ee"
    assert images._repository_name("network-ee:latest") == "network-ee"
    assert images._repository_name("registry:5000/x/containerrunner-ee") == "containerrunner-ee"
