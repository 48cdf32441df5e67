"""validate.new_uuid4: the text of a random version-4 UUID, as str(uuid.uuid4()) gives it."""

from __future__ import annotations

import uuid

from containerrunner.validate import job_ident, new_uuid4


def test_is_a_canonical_version_4_rfc_4122_uuid() -> None:
    for _ in range(200):
        text = new_uuid4()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # canonical: lower-case hex, 8-4-4-4-12


def test_each_is_new() -> None:
    assert len({new_uuid4() for _ in range(1000)}) == 1000


def test_a_job_without_an_ident_gets_one() -> None:
    assert uuid.UUID(job_ident(None)).version == 4
    assert job_ident("given") == "given"
