"""Print the reliability table: each fault injected between `ci-env cleanup` and a real registry.

    python bench/reliability_report.py [--repeat N] [--only SUBSTRING]

For each scenario of `tests/reliability/scenarios.py` (the same ones `make test` asserts): a
fresh local `docker-registry`, two seeded repositories, a dry-run plan as the oracle, then
`ci-env cleanup` through the fault-injecting proxy, re-run while it exits non-zero. Columns:
runs (cleanup invocations until exit 0), tags planned for removal, tags removed, tags wrongly
deleted (kept tags gone or moved — must be 0), tags still left, retries (failed attempts the
proxy saw: injected faults, 5xx, 429, dropped/timed-out exchanges), wall time. The `none` row
is the baseline measured in the same run; `x base` is each row's time against it.
Rows named `github: ...` / `dockerhub: ...` (`tests/reliability/native_scenarios.py`) put the
proxy in front of that kind's native API fake instead (one repository, 4 planned removals).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.native_scenarios import SCENARIOS as NATIVE  # noqa: E402
from tests.reliability.native_scenarios import run_native  # noqa: E402
from tests.reliability.scenarios import SCENARIOS, Outcome, run_scenario  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

COLUMNS = ("fault", "runs", "planned", "deleted", "wrongly deleted", "left", "retries", "time s")


def one(name: str) -> Outcome:
    reg = LocalRegistry("htpasswd").start()
    try:
        with tempfile.TemporaryDirectory(prefix="ci-env-rel-") as tmp:
            kind, _, fault = name.partition(": ")
            if kind in NATIVE and fault in NATIVE[kind]:
                return run_native(reg, kind, fault, Path(tmp))
            return run_scenario(reg, name, Path(tmp))
    finally:
        reg.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario (1)")
    parser.add_argument("--only", default="", help="scenarios whose name contains this")
    args = parser.parse_args()
    every = [
        *SCENARIOS,
        *(f"{kind}: {fault}" for kind, faults in NATIVE.items() for fault in faults),
    ]
    names = [n for n in every if args.only.lower() in n.lower()] or every
    if "none" not in names:
        names.insert(0, "none")
    rows = []
    base = None
    for name in names:
        outcomes = [one(name) for _ in range(args.repeat)]
        seconds = sum(o.seconds for o in outcomes) / len(outcomes)
        base = seconds if name == "none" else base
        rows.append(
            (
                name,
                str(sum(o.runs for o in outcomes)),
                str(sum(o.planned for o in outcomes)),
                str(sum(o.deleted for o in outcomes)),
                str(sum(len(o.wrongly_deleted) for o in outcomes)),
                str(sum(len(o.missing) for o in outcomes)),
                str(sum(o.retries for o in outcomes)),
                f"{seconds:.1f} ({seconds / base:.1f}x base)" if base else f"{seconds:.1f}",
            )
        )
        print(f"  done: {name}", file=sys.stderr)
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    line = " | ".join
    print(line(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    wrong = sum(int(r[4]) for r in rows)
    left = sum(int(r[5]) for r in rows)
    print(f"\ntags wrongly deleted: {wrong} (must be 0); planned tags left after re-runs: {left}")
    return 1 if wrong or left else 0


if __name__ == "__main__":
    raise SystemExit(main())
