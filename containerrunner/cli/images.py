"""`images build`, `lock`, `list` and `inspect`: the project's EE images from the packaged recipes.

The recipes ship in the package (containerrunner/recipes/: ee/, base/, network-ee/, their lock
files and the scripts), so `pip install containerrunner` is enough to build them; the build
itself is the packaged `scripts/build-images` (bash), which also computes the recipe hashes that
`list` compares with each image's `containerrunner.recipe` label.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from containerrunner.cli import imagelocks
from containerrunner.cli.common import CliError, chosen_engines, say
from containerrunner.errors import EngineError
from containerrunner.isolation.engine import Engine, run_engine

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
BUILD_SCRIPT = RECIPES / "scripts" / "build-images"
RECIPE_LABEL = imagelocks.RECIPE_LABEL
# Repository names (without registry and tag) of the images the project builds.
PROJECT_IMAGES = ("containerrunner-base", "containerrunner-ee", "network-ee")
QUERY_TIMEOUT = 120.0
LIST_WIDTH = 1000  # at most this many columns in a row of `images list`


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
    for flag in ("force", "relock", "verify"):
        if getattr(args, flag, False):
            argv.append(f"--{flag}")
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
    labels: imagelocks.ImageLabels


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
        labels = image_labels(engine, ref)
        label = labels.recipe
        if label is None:
            recipe = "-"
        else:
            expected = [h for r, h in hashes.items() if _same_image(ref, r)]
            recipe = "unknown" if not expected else "current" if label in expected else "stale"
        short_id = image_id.removeprefix("sha256:")[:12]
        rows.append(ImageRow(engine.name, ref, short_id, recipe, labels))
    return rows


def image_labels(engine: Engine, ref: str) -> imagelocks.ImageLabels:
    """The containerrunner labels of an image (none when it has none or is absent)."""
    proc = run_engine(
        engine, ["image", "inspect", "--format", "{{json .Config.Labels}}", ref], QUERY_TIMEOUT
    )
    try:
        labels = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        labels = None
    return imagelocks.parse_labels(labels if isinstance(labels, dict) else None)


def cmd_list(args: argparse.Namespace) -> int:
    hashes = recipe_hashes()
    rows: list[ImageRow] = []
    missing: list[str] = []

    def absent(name: str, exc: Exception) -> None:
        missing.append(f"{name} ({exc})" if args.debug else name)

    for engine in chosen_engines(args.engine, absent):
        rows += list_rows(engine, hashes)
    # Whole rows whatever the terminal's width (like `docker images`): a narrow terminal wraps
    # them, and a script reading the output gets every column.
    console = Console(highlight=False, width=LIST_WIDTH)
    table = Table(box=None, pad_edge=False)
    for column in ("ENGINE", "IMAGE", "ID", "RECIPE", "HASH", "CORE", "LOCKS", "COLLECTIONS"):
        table.add_column(column, no_wrap=True)
    styles = {"current": "green", "stale": "yellow", "unknown": "dim", "-": "dim"}
    for row in rows:
        recipe = f"[{styles[row.recipe]}]{row.recipe}[/]"
        table.add_row(
            row.engine,
            row.ref,
            row.image_id,
            recipe,
            row.labels.recipe or "-",
            row.labels.ansible_core or "-",
            imagelocks.format_locks(row.labels.locks),
            imagelocks.format_collections(row.labels.collections),
        )
    if rows:
        console.print(table)
    else:
        say("no containerrunner images found; build them with `containerrunner images build`")
    for name in missing:
        say(f"{name} does not answer: its images are not listed")
    sys.stdout.flush()
    return 0


def inspect_lines(ref: str, engine_name: str, labels: imagelocks.ImageLabels) -> list[str]:
    """What `images inspect` prints: the labels, then each lock the image was built from."""
    lines = [
        f"image: {ref} ({engine_name})",
        f"recipe: {labels.recipe or '-'}",
        f"ansible-core: {labels.ansible_core or '-'}",
        f"collections: {imagelocks.format_collections(labels.collections)}",
    ]
    for part, digest in labels.locks:
        lines.append(f"lock {part}: {digest}")
    for part, digest in labels.locks:
        path = imagelocks.find_lock(RECIPES, digest)
        lines.append("")
        if path is None:
            lines.append(
                f"# lock {part}: {digest} is not among the packaged locks "
                f"(the image was built from other recipes)"
            )
            continue
        rel = path.relative_to(RECIPES)
        pins = imagelocks.parse_lock(path.read_text(encoding="utf-8"), str(rel))
        lines.append(f"# lock {part}: {rel} ({len(pins)} packages)")
        for pin in pins:
            if pin.sha256 is None:
                lines.append(f"{pin.name}={pin.version}")
            else:
                lines.append(f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}")
    return lines


def cmd_inspect(args: argparse.Namespace) -> int:
    for engine in chosen_engines(args.engine):
        if run_engine(engine, ["image", "inspect", args.image], QUERY_TIMEOUT).returncode != 0:
            continue
        labels = image_labels(engine, args.image)
        if not labels.locks:
            raise CliError(
                f"{args.image} ({engine.name}) has no containerrunner.lock labels: it was not "
                "built from locked recipes; build it with `containerrunner images build`"
            )
        try:
            lines = inspect_lines(args.image, engine.name, labels)
        except imagelocks.LockError as exc:
            raise CliError(str(exc)) from exc
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return 0
    where = "any engine" if args.engine == "auto" else args.engine
    raise CliError(
        f"image {args.image} not found in {where}; `containerrunner images list` shows them"
    )
