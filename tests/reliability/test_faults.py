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

from tests.support.registry import LocalRegistry
from tests.support.scenarios import SCENARIOS, run_scenario


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_converges_to_the_plan(name: str, registry: LocalRegistry, tmp_path: Path) -> None:
    run_scenario(registry, name, tmp_path).assert_converged(injected=name != "none")
