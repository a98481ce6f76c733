"""Faults between cleanup and a real registry: nothing kept is lost, nothing planned is left.

Each scenario in `scenarios.SCENARIOS` seeds two repositories, takes a dry-run plan straight
from the registry as the oracle, then runs `ci-env cleanup` through the fault proxy (re-running
while it exits non-zero, as a CI retry would). The final tags must equal the plan exactly and
the first run's report must account for every tag. `bench/reliability_report.py` prints the
same scenarios as a table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.harness import TRACEBACK
from tests.reliability.scenarios import SCENARIOS, run_scenario
from tests.support.registry import LocalRegistry


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_converges_to_the_plan(name: str, registry: LocalRegistry, tmp_path: Path) -> None:
    outcome = run_scenario(registry, name, tmp_path)
    logs = "\n".join(r.describe() for r in outcome.results)
    assert not outcome.wrongly_deleted, f"kept tags lost: {outcome.wrongly_deleted}\n{logs}"
    assert not outcome.missing, f"planned deletions left after re-runs: {outcome.missing}\n{logs}"
    assert not outcome.unreported, f"tags missing from the report: {outcome.unreported}\n{logs}"
    assert outcome.results[-1].code == 0, logs
    assert all(TRACEBACK not in r.output for r in outcome.results), logs
    assert outcome.planned > 0 and outcome.deleted == outcome.planned
    if name != "none":
        assert outcome.retries > 0, "the fault was never injected"
