"""Every fake answer in these tests must match its vendor schema (`tests/fakes/_schemas.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import _schemas


@pytest.fixture(autouse=True)
def fakes_follow_vendor_schemas() -> Iterator[None]:
    # Fakes served from a thread cannot raise into the test: their violations are collected.
    _schemas.VIOLATIONS.clear()
    yield
    assert not _schemas.VIOLATIONS, "fake answers drifted from vendor schemas: " + "; ".join(
        _schemas.VIOLATIONS
    )
