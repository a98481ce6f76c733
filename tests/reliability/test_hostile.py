"""Hostile registries (issue 16): no credential to another origin, no secret printed, no hang,
no traceback. The cases live in `tests/support/hostile_cases.py` (shared with
bench/reliability_report.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hostile_cases import CASES


@pytest.mark.parametrize("name", list(CASES))
def test_hostile(name: str, tmp_path: Path) -> None:
    outcome = CASES[name](tmp_path)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.ok, outcome.describe()
