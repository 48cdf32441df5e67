"""Unit tests: the engine client stays on the CLI (fake engines are executables that log their
argv); tests of the API backends give them the libraries' test doubles themselves."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from containerrunner.isolation import client
from containerrunner.isolation import engine as engine_mod
from containerrunner.isolation import images as images_mod


@pytest.fixture(autouse=True)
def engine_client_on_the_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(client.API_VARIABLE, "cli")
    client.forget_clients()
    yield
    client.forget_clients()


@pytest.fixture
def fresh_engine_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's engine facts (rootless, answered, versions, the provenance's version
    asks) forgotten for the test and restored after it; root in the initial user namespace
    (no `podman info`). For tests whose fake engine on PATH must be asked afresh."""
    monkeypatch.setattr(engine_mod, "_ROOTLESS", {})
    monkeypatch.setattr(engine_mod, "_plainly_rootful", lambda: True)  # no `info`
    monkeypatch.setattr(engine_mod, "_ANSWERED", set())
    monkeypatch.setattr(engine_mod, "_VERSIONS", {})
    monkeypatch.setattr(
        images_mod, "_asked_version", functools.cache(images_mod._asked_version.__wrapped__)
    )
    monkeypatch.setattr(images_mod, "_VERSION_ASKS", {})
