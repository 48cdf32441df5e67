"""Unit tests: the engine client stays on the CLI (fake engines are executables that log their
argv); tests of the API backends give them the libraries' test doubles themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from containerrunner.isolation import client


@pytest.fixture(autouse=True)
def engine_client_on_the_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(client.API_VARIABLE, "cli")
    client.forget_clients()
    yield
    client.forget_clients()
