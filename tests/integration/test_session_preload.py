"""The warm session's preloader on real engines: helper calls it serves give what cold calls
give, see each call's own environment and cwd (ansible's configuration is read per call), and
a dead preloader only costs the speed-up (the call is exec'd)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from containerrunner.process.preload import PRELOAD_LOG
from tests.conftest import EE_IMAGE
from tests.integration.support import container_kwargs, copy_examples

pytestmark = pytest.mark.integration


def served(session: containerrunner.Session) -> int:
    """How many calls the session's preloader ran (its log says, per call)."""
    return Path(session.runtime_dir, PRELOAD_LOG).read_text().count("preloader: served ")


def without_tmp(text: str) -> str:
    """ansible-config's dump without its per-process random temp dir."""
    return "\n".join(line for line in text.splitlines() if "DEFAULT_LOCAL_TMP" not in line)


def helper_calls(pdd: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    inventory = str(pdd / "inventory")
    return [
        ("get_plugin_docs", (["ansible.builtin.debug"],), {"response_format": "json"}),
        ("get_plugin_docs", (["no_such_plugin_xyz"],), {"response_format": "json"}),
        ("get_inventory", ("list", [inventory]), {"response_format": "json"}),
        ("get_inventory", ("graph", [inventory]), {}),
        ("get_ansible_config", ("dump",), {"envvars": {"ANSIBLE_FORKS": "7"}}),
    ]


def test_helpers_served_by_the_preloader_give_what_cold_calls_give(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    pdd = copy_examples(tmp_path)
    calls = helper_calls(pdd)

    def results(**where: Any) -> list[Any]:
        got = []
        for name, args, kwargs in calls:
            out, err = getattr(containerrunner, name)(
                *args, **kwargs, host_cwd=str(pdd), quiet=True, **where
            )
            got.append((without_tmp(out) if name == "get_ansible_config" else out, err))
        return got

    cold = results(**container_kwargs(engine))
    with containerrunner.Session(image=EE_IMAGE, engine=engine.name, mounts=[str(tmp_path)]) as s:
        warm = results(session=s)
        assert served(s) == len(calls)  # every call above ran in the preloader
    assert warm == cold
    assert "ansible.builtin.debug" in warm[0][0]
    assert "no_such_plugin_xyz" in warm[1][1]  # the failure's message, as a cold call's
    assert "DEFAULT_FORKS(env: ANSIBLE_FORKS) = 7" in warm[4][0]


def test_each_preloaded_call_reads_ansibles_configuration_afresh(
    no_leftover_containers: Engine, tmp_path: Path
) -> None:
    engine = no_leftover_containers
    with_cfg, without_cfg = tmp_path / "with", tmp_path / "without"
    with_cfg.mkdir()
    without_cfg.mkdir()
    (with_cfg / "ansible.cfg").write_text("[defaults]\ntimeout = 33\n")

    def changed(cwd: Path, env: dict[str, str], session: containerrunner.Session) -> str:
        out, _err = containerrunner.get_ansible_config(
            "dump", only_changed=True, envvars=env, host_cwd=str(cwd), session=session,
            quiet=True,
        )  # fmt: skip
        return str(out)

    with containerrunner.Session(image=EE_IMAGE, engine=engine.name, mounts=[str(tmp_path)]) as s:
        first = changed(without_cfg, {"ANSIBLE_FORKS": "7"}, s)
        second = changed(without_cfg, {"ANSIBLE_FORKS": "11"}, s)
        third = changed(with_cfg, {}, s)
        fourth = changed(without_cfg, {}, s)
        assert served(s) == 4
    assert "DEFAULT_FORKS(env: ANSIBLE_FORKS) = 7" in first
    assert "DEFAULT_FORKS(env: ANSIBLE_FORKS) = 11" in second and "= 7" not in second
    assert f"DEFAULT_TIMEOUT({with_cfg / 'ansible.cfg'}) = 33" in third
    assert "FORKS" not in third
    assert "FORKS" not in fourth and "TIMEOUT" not in fourth


def test_a_dead_preloader_only_costs_the_speed_up(
    no_leftover_containers: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = no_leftover_containers
    with containerrunner.Session(image=EE_IMAGE, engine=engine.name, mounts=[str(tmp_path)]) as s:
        before, _err = containerrunner.get_ansible_config(
            "list", host_cwd=str(tmp_path), session=s, quiet=True
        )
        assert served(s) == 1
        kill = 'for f in /proc/[0-9]*/cmdline; do if tr "\\0" " " < "$f" | grep -q "^python3 .*preloader.py"; then d=${f%/cmdline}; kill -9 ${d#/proc/}; fi; done'  # noqa: E501
        subprocess.run([engine.executable, "exec", s.container, "sh", "-c", kill], check=True)
        with caplog.at_level(logging.DEBUG, logger="containerrunner.process.preload"):
            after, _err = containerrunner.get_ansible_config(
                "list", host_cwd=str(tmp_path), session=s, quiet=True
            )
        assert after == before
        assert served(s) == 1  # exec'd: the preloader is gone
        assert any("with exec" in r.getMessage() for r in caplog.records)
    # a session without a preloader serves the same
    kwargs: dict[str, Any] = {"image": EE_IMAGE, "engine": engine.name, "preload": False}
    with containerrunner.Session(mounts=[str(tmp_path)], **kwargs) as s:
        out, _err = containerrunner.get_ansible_config(
            "list", host_cwd=str(tmp_path), session=s, quiet=True
        )
        assert out == before
        assert not os.path.exists(os.path.join(s.runtime_dir, PRELOAD_LOG))
