"""The package's top level is lazy: every public name still imports, the heavy modules wait.

Each check of what an import loads runs in a fresh interpreter (`sys.modules` of this test
process already holds everything the other tests imported).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import containerrunner

# modules a bare `import containerrunner` must not load
HEAVY = (
    "containerrunner.interface",
    "containerrunner.group",
    "containerrunner.session",
    "containerrunner.streams",
    "containerrunner.runner",
    "containerrunner.cluster",
    "containerrunner.streaming",
    "containerrunner.junit",
    "yaml",
    "podman",
    "docker",
    "kubernetes",
)
# modules `from containerrunner import run_command` (and calling nothing yet) must not load
NOT_FOR_RUN_COMMAND = (
    "containerrunner.group",
    "containerrunner.session",
    "containerrunner.streams",
    "containerrunner.cluster",
    "containerrunner.streaming",
    "yaml",
    "podman",
    "docker",
    "kubernetes",
    "containerrunner.junit",  # an event job (ansible, ansible-playbook) imports it at its end
    # B2 (docs/benchmarks.md, 2026-12-04 22:15): ~3.5 ms of a first call's imports
    "uuid",  # and with it platform: validate.new_uuid4 makes idents and event uuids
    "socket",  # only a session's preloaded call (process/preload.py) needs it
    "containerrunner.isolation.registry_auth",  # only a pull with credentials
)


def _loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` are in sys.modules after `statement`, in a fresh interpreter."""
    probe = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps([n for n in {list(names)!r} if n in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_import_loads_no_heavy_module() -> None:
    assert _loaded_after("import containerrunner", HEAVY) == []


def test_run_command_import_loads_only_its_path() -> None:
    statement = "from containerrunner import run_command"
    assert _loaded_after(statement, NOT_FOR_RUN_COMMAND) == []


def test_a_host_run_command_call_loads_only_its_path() -> None:
    statement = (
        "from containerrunner import run_command\n"
        "out, err, rc = run_command('true', quiet=True)\n"
        "assert rc == 0, (out, err)"
    )
    assert _loaded_after(statement, NOT_FOR_RUN_COMMAND) == []


def test_every_public_name_imports_in_a_fresh_process() -> None:
    names = ", ".join(n for n in containerrunner.__all__)
    assert _loaded_after(f"from containerrunner import {names}", ()) == []


@pytest.mark.parametrize("name", containerrunner.__all__)
def test_public_name_is_the_defining_modules_object(name: str) -> None:
    value = getattr(containerrunner, name)
    assert value is not None
    module = containerrunner._LAZY.get(name)
    if module is not None:
        assert value is getattr(sys.modules[module], name)


def test_results_is_the_submodule() -> None:
    from containerrunner import results

    assert results is sys.modules["containerrunner.results"]
    assert results.Summary is containerrunner.Summary


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = containerrunner.not_a_name  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from containerrunner import not_a_name", {})


def test_dir_lists_every_public_name() -> None:
    assert set(containerrunner.__all__) <= set(dir(containerrunner))


def test_all_matches_the_lazy_table() -> None:
    eager = {n for n in containerrunner.__all__ if n in vars(containerrunner)}
    lazy = set(containerrunner._LAZY) | set(containerrunner._SUBMODULES)
    assert set(containerrunner.__all__) <= eager | lazy
    assert lazy <= set(containerrunner.__all__)
