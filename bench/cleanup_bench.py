"""Benchmark: `ci-env cleanup` against a shell loop of `skopeo delete` on identical seeds.

Starts its own local `docker-registry` (htpasswd auth, delete enabled), seeds N tags in
three identical repositories (half `keep-<i>`, half `pr-<i>`), then:
  1. times `ci-env cleanup --delete-tag 'pr-.*'` on repository A;
  2. times `for t in pr-...; do skopeo delete docker://.../B:$t; done` on repository B
     (the common hand-written alternative: resolve each tag, delete by digest);
  3. runs ci-env once more on repository C through a counting proxy, for requests per
     deleted tag.
Prints both times, the ratio and the request count. Usage: python bench/cleanup_bench.py [-n N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import images  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

CREATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def seed(reg: LocalRegistry, repo: str, count: int) -> list[str]:
    names = [f"keep-{i}" if i % 2 else f"pr-{i}" for i in range(count)]
    images.seed_bulk(reg, repo, [(name, CREATED) for name in names], workers=16)
    return [name for name in names if name.startswith("pr-")]


def docker_config(directory: Path, reg: LocalRegistry, host: str) -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps({"auths": {host: {"auth": reg.auth_entry()}}})
    )
    (directory / "config.json").chmod(0o600)
    return directory


def run_cienv(host: str, repo: str, config: Path, parallel: int) -> float:
    env = dict(os.environ, DOCKER_CONFIG=str(config), PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "ci_env",
        "cleanup",
        "--repo",
        f"{host}/{repo}",
        "--delete-tag",
        "pr-.*",
        "--keep-newer-than",
        "0s",
        "--parallel",
        str(parallel),
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"ci-env cleanup failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return elapsed


def run_skopeo_loop(host: str, repo: str, config: Path, tags: list[str]) -> float:
    script = (
        'for t in "$@"; do skopeo delete --tls-verify=false --authfile "$AUTH" '
        f'"docker://{host}/{repo}:$t" || exit 1; done'
    )
    env = dict(os.environ, AUTH=str(config / "config.json"))
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script, "sh", *tags], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="tags per repository (2000)")
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    reg = LocalRegistry("htpasswd", lifetime=3600).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = docker_config(Path(tmp) / "direct", reg, reg.host)
            print(f"seeding 3 x {args.n} tags ...", flush=True)
            doomed = seed(reg, "bench/a", args.n)
            seed(reg, "bench/b", args.n)
            seed(reg, "bench/c", args.n)
            cienv = run_cienv(reg.host, "bench/a", config, args.parallel)
            skopeo = run_skopeo_loop(reg.host, "bench/b", config, doomed)
            for repo in ("bench/a", "bench/b"):
                left = images.list_tags(reg, repo)
                assert len(left) == args.n - len(doomed), (repo, len(left))
                assert not any(tag.startswith("pr-") for tag in left), repo
            with FaultProxy(reg.url, lifetime=3600) as proxy:
                counted = docker_config(Path(tmp) / "proxy", reg, proxy.host)
                run_cienv(proxy.host, "bench/c", counted, args.parallel)
                requests = proxy.count()
    finally:
        reg.close()
    deleted = len(doomed)
    print(f"tags: {args.n}, deleted: {deleted}")
    print(f"ci-env cleanup (--parallel {args.parallel}): {cienv:.2f}s")
    print(f"skopeo delete loop (baseline):  {skopeo:.2f}s")
    print(f"ratio: {skopeo / cienv:.1f}x faster than the skopeo loop")
    print(f"HTTP requests: {requests} = {requests / deleted:.3f} per deleted tag")


if __name__ == "__main__":
    main()
