"""`images build` and `images list`: the project's EE images from the packaged recipes.

The recipes ship in the package (containerrunner/recipes/: ee/, base/, network-ee/ and the
scripts), so `pip install containerrunner` is enough to build them; the build itself is the
packaged `scripts/build-images` (bash), which also computes the recipe hashes that `list`
compares with each image's `containerrunner.recipe` label.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from containerrunner.cli.common import CliError, say
from containerrunner.errors import EngineError
from containerrunner.isolation.engine import Engine, run_engine

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
BUILD_SCRIPT = RECIPES / "scripts" / "build-images"
RECIPE_LABEL = "containerrunner.recipe"
# Repository names (without registry and tag) of the images the project builds.
PROJECT_IMAGES = ("containerrunner-base", "containerrunner-ee", "network-ee")
QUERY_TIMEOUT = 120.0


def _bash() -> str:
    bash = shutil.which("bash")
    if bash is None:
        raise CliError("`images` needs bash to run the packaged build-images script")
    if not BUILD_SCRIPT.is_file():
        raise CliError(f"the image recipes are missing from the package ({BUILD_SCRIPT})")
    return bash


def build_argv(args: argparse.Namespace) -> list[str]:
    argv = [_bash(), str(BUILD_SCRIPT)]
    if args.base_image:
        argv += ["--base-image", args.base_image]
    argv += ["--engine", args.engine]
    if args.force:
        argv.append("--force")
    return argv


def cmd_build(args: argparse.Namespace) -> int:
    argv = build_argv(args)
    if args.debug:
        say(f"debug: running: {' '.join(argv)}")
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode


def recipe_hashes() -> dict[str, str]:
    """{image ref: current recipe hash} from `build-images --print-hashes` ({} if unknown)."""
    try:
        proc = subprocess.run(
            [_bash(), str(BUILD_SCRIPT), "--engine", "podman", "--print-hashes"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}
    hashes: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        ref, _, value = line.strip().partition(" ")
        if ref and value:
            hashes[ref] = value
    return hashes


@dataclass(frozen=True)
class ImageRow:
    engine: str
    ref: str
    image_id: str
    recipe: str  # current | stale | - (not built from the recipe) | unknown


def _repository_name(ref: str) -> str:
    """`localhost/network-ee:latest` -> `network-ee`."""
    name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return name.rsplit("/", 1)[-1]


def _same_image(ref: str, hashed_ref: str) -> bool:
    return _repository_name(ref) == _repository_name(hashed_ref)


def list_rows(engine: Engine, hashes: dict[str, str]) -> list[ImageRow]:
    listing = run_engine(
        engine, ["images", "--format", "{{.Repository}}:{{.Tag}}\t{{.ID}}"], QUERY_TIMEOUT
    )
    if listing.returncode != 0:
        raise EngineError(f"`{engine.executable} images` failed: {listing.stderr.strip()}")
    rows: list[ImageRow] = []
    for line in listing.stdout.splitlines():
        ref, _, image_id = line.strip().partition("\t")
        if _repository_name(ref) not in PROJECT_IMAGES:
            continue
        label_format = f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}'
        label = run_engine(
            engine, ["image", "inspect", "--format", label_format, ref], QUERY_TIMEOUT
        ).stdout.strip()
        if label in ("", "<no value>"):
            recipe = "-"
        else:
            expected = [h for r, h in hashes.items() if _same_image(ref, r)]
            recipe = "unknown" if not expected else "current" if label in expected else "stale"
        short_id = image_id.removeprefix("sha256:")[:12]
        rows.append(ImageRow(engine.name, ref, short_id, recipe))
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    from containerrunner.isolation.engine import ENGINE_NAMES, detect_engine

    names = ENGINE_NAMES if args.engine == "auto" else (args.engine,)
    hashes = recipe_hashes()
    rows: list[ImageRow] = []
    missing: list[str] = []
    for name in names:
        try:
            engine = detect_engine(name)
        except EngineError as exc:
            if args.engine != "auto":
                raise
            missing.append(f"{name} ({exc})" if args.debug else name)
            continue
        rows += list_rows(engine, hashes)
    console = Console(highlight=False)
    table = Table(box=None, pad_edge=False)
    for column in ("ENGINE", "IMAGE", "ID", "RECIPE"):
        table.add_column(column, no_wrap=True)
    styles = {"current": "green", "stale": "yellow", "unknown": "dim", "-": "dim"}
    for row in rows:
        recipe = f"[{styles[row.recipe]}]{row.recipe}[/]"
        table.add_row(row.engine, row.ref, row.image_id, recipe)
    if rows:
        console.print(table)
    else:
        say("no containerrunner images found; build them with `containerrunner images build`")
    for name in missing:
        say(f"{name} does not answer: its images are not listed")
    sys.stdout.flush()
    return 0
