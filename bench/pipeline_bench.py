"""Benchmark: how busy ci-env keeps its workers when every request costs a round trip.

A loopback proxy (`tests/support/faultproxy.py`, every request held `--rtt` ms after the
registry answered) sits in front of a local `docker-registry` with N tags in one repository,
each its own image and config: `pr-<i>` built long ago, `keep-<i>` just now. For each policy
(by name: `--delete-tag 'pr-.*' --keep-newer-than 0s`; by age: `--delete-older-than 30d`) on a
fresh copy it times `ci-env cleanup` and prints the requests the proxy saw (all of them: the
listing, 401s and the re-check cost round trips too), requests per deleted tag, the ideal time
`requests x RTT / parallel` and the ratio wall time / ideal (1.0: no worker ever idle; the
process start-up, ~0.3 s, and the few round trips that must follow each other — a 401, the
tag list, the re-check's tag list — are in the wall time, not in the ideal).

With `--against DIR` (a checkout of other code, e.g. `git worktree add /tmp/main main`) the
same runs are made with DIR's ci-env too, on fresh copies, and the ratio of the two wall times
is printed: on a loaded machine the ideal is out of reach, the comparison still holds.

Usage: python bench/pipeline_bench.py [-n N] [--rtt MS] [--parallel P] [--against DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ci_env.commands.cleanup import DEFAULT_PARALLEL  # noqa: E402
from tests.support import images  # noqa: E402
from tests.support.faultproxy import FaultProxy, slow  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
POLICIES = {
    "by name": ["--delete-tag", "pr-.*", "--keep-newer-than", "0s"],
    "by age": ["--delete-older-than", "30d"],
}


def seed(reg: LocalRegistry, repo: str, count: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    half = count // 2
    tags = [(f"pr-{i}", OLD + dt.timedelta(seconds=i)) for i in range(half)]
    tags += [(f"keep-{i}", now - dt.timedelta(seconds=i)) for i in range(count - half)]
    images.seed_bulk(reg, repo, tags, workers=16)


def run(
    reg: LocalRegistry,
    tmp: Path,
    code: Path,
    rtt: float,
    parallel: int,
    policy: list[str],
) -> tuple[float, int]:
    repo = "bench/app"
    with FaultProxy(reg.url, lifetime=3600) as proxy:
        proxy.add(slow(rtt, times=None, forward=True))
        config = tmp / "docker"
        config.mkdir(mode=0o700, exist_ok=True)
        auths = {"auths": {proxy.host: {"auth": reg.auth_entry()}}}
        (config / "config.json").write_text(json.dumps(auths))
        env = {"DOCKER_CONFIG": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp)}
        cmd = [sys.executable, "-m", "ci_env", "cleanup", "--repo", f"{proxy.host}/{repo}"]
        cmd += ["--parallel", str(parallel), *policy] if parallel else policy
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"ci-env failed:\n{done.stdout}\n{done.stderr}")
        return seconds, len(proxy.records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="tags (half deleted)")
    parser.add_argument("--rtt", type=float, default=30.0, help="round trip added, ms")
    parser.add_argument("--parallel", type=int, default=0, help="ci-env --parallel (0: default)")
    parser.add_argument("--against", metavar="DIR", help="also run the ci-env checked out in DIR")
    args = parser.parse_args()
    parallel = args.parallel or DEFAULT_PARALLEL
    rtt = args.rtt / 1000
    print(f"{args.n} tags, {args.n // 2} deleted, RTT {args.rtt:.0f} ms, --parallel {parallel}")
    for name, policy in POLICIES.items():
        seconds, sent = measure(ROOT, args.n, rtt, args.parallel, policy)
        ideal = sent * rtt / parallel
        print(
            f"{name}: {seconds:.2f} s, {sent} requests ({sent / (args.n // 2):.2f} per deleted "
            f"tag), ideal {ideal:.2f} s, ratio {seconds / ideal:.2f}"
        )
        if args.against:
            before, old = measure(Path(args.against), args.n, rtt, args.parallel, policy)
            print(
                f"  {args.against}: {before:.2f} s, {old} requests "
                f"({old / (args.n // 2):.2f} per deleted tag); this code {before / seconds:.2f}x"
            )


def measure(code: Path, n: int, rtt: float, parallel: int, policy: list[str]) -> tuple[float, int]:
    """One run of `code`'s ci-env on a fresh registry seeded with `n` tags."""
    reg = LocalRegistry("htpasswd", lifetime=3600).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seed(reg, "bench/app", n)
            return run(reg, Path(tmp), code, rtt, parallel, policy)
    finally:
        reg.close()


if __name__ == "__main__":
    main()
