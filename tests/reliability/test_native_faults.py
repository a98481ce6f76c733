"""Faults between cleanup and native APIs (GitHub REST, Docker Hub): the plan, exactly.

Each scenario of `native_scenarios.SCENARIOS` puts the fault proxy in front of the kind's API
fake (429 with Retry-After, a 503 burst, a dropped or reset connection), runs `ci-env cleanup`
(re-run while it exits non-zero, as a CI retry would) and compares the fake's final tags with
a dry-run plan taken without faults: nothing kept is gone, every planned removal is done.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.native_scenarios import SCENARIOS, run_native
from tests.support.registry import LocalRegistry

CASES = [(kind, fault) for kind, faults in SCENARIOS.items() for fault in faults]


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("kind", "fault"), CASES, ids=[f"{k}: {f}" for k, f in CASES])
def test_native_fault_converges_to_the_plan(
    kind: str, fault: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    run_native(registry, kind, fault, tmp_path).assert_converged()
