"""Benchmark: keep.git's reachability (one pass over the history) against walking every
reference's ancestry (what a per-reference scan like werf's costs), on a synthetic history.

The history: a linear `main` of N commits, B branches forking off its last 5,000 commits
(each one commit ahead), images on main's last I commits and on every branch head, plus one
image on a commit no reference reaches (so no walk can stop early). Policy: every branch,
2 images each. Prints both times, their ratio, and whether both keep the same images.

Usage: python bench/keep_policies_bench.py [-n N] [-b B] [-i I]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ci_env.cleanup import keep_policies as kp  # noqa: E402
from ci_env.cleanup.keep_policies import Commit, GitRef, History, KeepPolicy, Limit  # noqa: E402
from ci_env.cleanup.keep_policies import RefKind as K  # noqa: E402

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def history(n: int, b: int) -> History:
    rng = random.Random(7)
    commits: dict[str, Commit] = {}
    main: list[str] = []
    for i in range(n):
        sha = f"{i:040x}"
        commits[sha] = Commit(NOW - timedelta(minutes=n - i), tuple(main[-1:]))
        main.append(sha)
    refs = [GitRef(K.BRANCH, "main", main[-1], NOW)]
    for i in range(b):
        sha = f"b{i:039x}"
        commits[sha] = Commit(
            NOW - timedelta(seconds=30), (main[rng.randrange(max(0, n - 5000), n)],)
        )
        refs.append(GitRef(K.BRANCH, f"feature-{i}", sha, NOW - timedelta(seconds=30)))
    commits["f" * 40] = Commit(NOW)
    return History(tuple(refs), commits)


def walk(h: History, ref: GitRef, wanted: set[str]) -> set[str]:
    """The baseline: a depth-first walk of the reference's ancestry, stopping early only when
    every wanted commit is found."""
    found, seen, stack = set(), {ref.commit}, [ref.commit]
    while stack and len(found) < len(wanted):
        sha = stack.pop()
        if sha in wanted:
            found.add(sha)
        for parent in h.commits[sha].parents:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return found


def baseline(h: History, policy: KeepPolicy, images: dict[str, frozenset[str]]) -> set[str]:
    wanted = {sha for shas in images.values() for sha in shas}
    kept: set[str] = set()
    for ref in h.refs:
        reached = walk(h, ref, wanted)
        on = sorted(
            {next(iter(shas)) for shas in images.values() if shas & reached},
            key=lambda sha: h.commits[sha].date,
            reverse=True,
        )[: policy.images.last]
        kept |= {name for name, shas in images.items() if shas & set(on)}
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="commits on main")
    parser.add_argument("-b", type=int, default=300, help="branches")
    parser.add_argument("-i", type=int, default=2_000, help="images on main")
    args = parser.parse_args()
    h = history(args.n, args.b)
    main_shas = [ref.commit for ref in h.refs[:1]]
    sha = main_shas[0]
    images: dict[str, frozenset[str]] = {}
    for i in range(args.i):
        images[f"main-{i}"] = frozenset({sha})
        parents = h.commits[sha].parents
        if not parents:
            break
        sha = parents[0]
    images |= {ref.name: frozenset({ref.commit}) for ref in h.refs[1:]}
    images["orphan"] = frozenset({"f" * 40})
    policy = KeepPolicy(K.BRANCH, "/.*/", images=Limit(last=2))

    start = time.perf_counter()
    ours = set(kp.kept_images((policy,), h, images, NOW))
    one_pass = time.perf_counter() - start
    start = time.perf_counter()
    theirs = baseline(h, policy, images)
    walked = time.perf_counter() - start
    print(f"history: {args.n} commits on main, {args.b} branches, {len(images)} images")
    print(f"one pass:           {one_pass:8.2f} s")
    print(f"walk per reference: {walked:8.2f} s")
    print(f"ratio:              {walked / one_pass:8.1f}x   same kept set: {ours == theirs}")


if __name__ == "__main__":
    main()
