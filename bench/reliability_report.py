"""Print the reliability table: each fault injected between `ci-env cleanup` and a real registry.

    python bench/reliability_report.py [--repeat N] [--only SUBSTRING]

For each scenario of `tests/support/scenarios.py` (the same ones `make test` asserts): a
fresh local `docker-registry`, two seeded repositories, a dry-run plan as the oracle, then
`ci-env cleanup` through the fault-injecting proxy, re-run while it exits non-zero. Columns:
runs (cleanup invocations until exit 0), tags planned for removal, tags removed, tags wrongly
deleted (kept tags gone or moved — must be 0), tags still left, retries (failed attempts the
proxy saw: injected faults, 5xx, 429, dropped/timed-out exchanges), wall time. The `none` row
is the baseline measured in the same run; `x base` is each row's time against it.
Rows named `github: ...` / `dockerhub: ...` (`tests/support/native_scenarios.py`) put the
proxy in front of that kind's native API fake instead (one repository, 4 planned removals).

A second table covers hostile input and hostile registries (issue 16): every bad input of
`tests/reliability/test_bad_input.py` (must exit 2, or fail cleanly for broken answers, and
delete nothing) and every case of `tests/support/hostile_cases.py` (loopback servers
playing a hostile registry or token service). Columns: cases tried, hangs (past the case's
bound), leaks (a credential sent to another origin, a secret printed or reported, a workflow
command that reached the runner), crashes (a traceback or a wrong exit code), requests the
hostile servers answered, the ci-env run's time and the case's wall time. Hangs, leaks and
crashes must be 0. `--hostile-only` prints just this table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import hostile_cases  # noqa: E402
from tests.support.native_scenarios import SCENARIOS as NATIVE  # noqa: E402
from tests.support.native_scenarios import run_native  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402
from tests.support.scenarios import SCENARIOS, Outcome, run_scenario  # noqa: E402

COLUMNS = ("fault", "runs", "planned", "deleted", "wrongly deleted", "left", "retries", "time s")
HOSTILE_COLUMNS = (
    "hostile case", "tried", "hangs", "leaks", "crashes", "requests", "ci-env s", "time s",
)  # fmt: skip


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


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    line = " | ".join
    print(line(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _bad_inputs() -> tuple[str, ...]:
    """Every bad-input and broken-answer case, through pytest (its fixtures build them)."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/reliability/test_bad_input.py", "-k", "not table_is_big_enough"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", proc.stdout))
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", proc.stdout))
    seconds = time.monotonic() - start
    return ("bad inputs + broken answers", str(passed + failed), "0", "0", str(failed), "-",
            "-", f"{seconds:.1f}")  # fmt: skip


def hostile(only: str) -> int:
    rows = [] if only else [_bad_inputs()]
    for name, case in hostile_cases.CASES.items():
        if only and only.lower() not in name.lower():
            continue
        with tempfile.TemporaryDirectory(prefix="ci-env-hostile-") as tmp:
            start = time.monotonic()
            outcome = case(Path(tmp))
            seconds = time.monotonic() - start
        rows.append(
            (
                name,
                "1",
                str(int(outcome.hung)),
                str(len(outcome.leaks)),
                str(int(outcome.crashed)),
                str(outcome.requests),
                f"{outcome.result.seconds:.1f}" if outcome.result else "-",
                f"{seconds:.1f}",
            )
        )
        print(f"  done: {name}", file=sys.stderr)
    _table(HOSTILE_COLUMNS, rows)
    bad = sum(int(r[2]) + int(r[3]) + int(r[4]) for r in rows)
    tried = sum(int(r[1]) for r in rows)
    print(f"\nhostile cases tried: {tried}; hangs + leaks + crashes: {bad} (must be 0)")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario (1)")
    parser.add_argument("--only", default="", help="scenarios whose name contains this")
    parser.add_argument("--hostile-only", action="store_true", help="only the hostile table")
    args = parser.parse_args()
    if args.hostile_only:
        return hostile(args.only)
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
    _table(COLUMNS, rows)
    wrong = sum(int(r[4]) for r in rows)
    left = sum(int(r[5]) for r in rows)
    print(f"\ntags wrongly deleted: {wrong} (must be 0); planned tags left after re-runs: {left}")
    print()
    failed_hostile = hostile(args.only)
    return 1 if wrong or left or failed_hostile else 0


if __name__ == "__main__":
    raise SystemExit(main())
