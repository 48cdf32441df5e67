"""The event plugin and fact cache on the oldest (2.14) and newest (2.19) ansible-core.

ansible-core 2.19 changed templating and introduced data tagging; the plugin and the fact cache
reader must give the same results on both. The 2.14 EE is built by scripts/build-images.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import containerrunner
from containerrunner.isolation.engine import Engine
from tests.conftest import EE_IMAGE, image_present
from tests.integration.support import container_kwargs, copy_examples, event_shape

pytestmark = pytest.mark.integration

COMPAT_IMAGE = "localhost/containerrunner-ee:ansible-core-2.14"

FACTS_PLAY = (
    "- hosts: db1\n  gather_facts: true\n  gather_subset: [min]\n  tasks:\n"
    "    - set_fact: {planet: mars, cacheable: true}\n"
)


def _run(tmp_path: Path, engine: Engine, image: str, playbook: str) -> containerrunner.Runner:
    pdd = copy_examples(tmp_path / image.rsplit(":", 1)[-1])
    (pdd / "project" / "facts.yml").write_text(FACTS_PLAY)
    return containerrunner.run(
        private_data_dir=str(pdd), playbook=playbook, **container_kwargs(engine, image)
    )


def test_same_events_on_ansible_core_2_14_and_2_19(engine: Engine, tmp_path: Path) -> None:
    if not image_present(engine, COMPAT_IMAGE):
        pytest.fail(f"{COMPAT_IMAGE} missing in {engine.name}: run scripts/build-images")
    old = _run(tmp_path, engine, COMPAT_IMAGE, "site.yml")
    new = _run(tmp_path, engine, EE_IMAGE, "site.yml")
    assert old.status == new.status == "successful", old.stdout.read()
    assert "ansible-core 2.14." in old.stdout.read()
    assert "ansible-core 2.19." in new.stdout.read()
    assert event_shape(old.events) == event_shape(new.events)
    assert old.stats == new.stats


def test_fact_cache_on_ansible_core_2_14_and_2_19(engine: Engine, tmp_path: Path) -> None:
    for image in (COMPAT_IMAGE, EE_IMAGE):
        r = _run(tmp_path, engine, image, "facts.yml")
        assert r.status == "successful", r.stdout.read()
        facts = r.get_fact_cache("db1")
        assert facts["planet"] == "mars", image
        assert facts["ansible_system"] == "Linux", image
