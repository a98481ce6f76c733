"""Benchmark: `ci-env cleanup` against a shell loop of `skopeo delete` on identical seeds.

Starts its own local `docker-registry` (Bearer tokens or htpasswd, delete enabled) and measures
two layouts of N tags (every tag its own image; in every repository, alternately `keep-<i>` and
`pr-<i>`), each seeded three times:
  - one repository holding all N tags;
  - the same N tags spread over R repositories (`--repos`, default 20), cleaned as `PREFIX/*`.
For each layout:
  1. times `ci-env cleanup --delete-tag 'pr-.*'` on copy A, with the CPU time the registry
     and ci-env used meanwhile;
  2. times `for t in pr-...; do skopeo delete docker://HOST/REPO:$t; done` on copy B
     (the common hand-written alternative: resolve each tag, delete by digest);
  3. runs ci-env once more on copy C through a counting proxy, for requests per deleted tag.
Prints both times, the ratio and the request count per layout, and the *registry bound*: the
skopeo loop's time over the registry's own CPU time in the ci-env run spread over every core,
the best ratio any client could reach on this machine (a client that cost nothing).

Why two layouts: distribution 2.8 looks up every tag of the repository on each manifest
delete (`DeleteManifest` untags whatever pointed at the digest), so with thousands of tags in
one repository the registry's own work per delete (~60 ms at 2000 tags on 2 cores, ~5 ms at
100) bounds any client; spread over repositories the client's cost shows.

Usage: python bench/cleanup_bench.py [-n N] [--repos R] [--parallel P] [--auth token|htpasswd]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
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


def seed(reg: LocalRegistry, repos: list[str], count: int) -> dict[str, list[str]]:
    """Seed `count` tags spread over `repos`; returns {repo: tags to delete}."""
    doomed: dict[str, list[str]] = {}
    for index, repo in enumerate(repos):
        share = range(index, count, len(repos))
        names = [f"keep-{i}" if n % 2 else f"pr-{i}" for n, i in enumerate(share)]
        images.seed_bulk(reg, repo, [(name, CREATED) for name in names], workers=16)
        doomed[repo] = [name for name in names if name.startswith("pr-")]
    return doomed


def docker_config(directory: Path, reg: LocalRegistry, host: str) -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps({"auths": {host: {"auth": reg.auth_entry()}}})
    )
    (directory / "config.json").chmod(0o600)
    return directory


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cienv(host: str, repo: str, config: Path, parallel: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the ci-env process)."""
    env = dict(os.environ, DOCKER_CONFIG=str(config), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "ci_env", "cleanup", "--repo", f"{host}/{repo}"]
    cmd += ["--delete-tag", "pr-.*", "--keep-newer-than", "0s", "--parallel", str(parallel)]
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"ci-env cleanup failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return elapsed, children_cpu() - cpu


def run_skopeo_loop(host: str, config: Path, doomed: dict[str, list[str]]) -> float:
    refs = [f"docker://{host}/{repo}:{tag}" for repo, tags in doomed.items() for tag in tags]
    script = (
        'for r in "$@"; do skopeo delete --tls-verify=false --authfile "$AUTH" "$r" || exit 1; done'
    )
    env = dict(os.environ, AUTH=str(config / "config.json"))
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script, "sh", *refs], env=env, check=True)
    return time.perf_counter() - start


def check_left(reg: LocalRegistry, doomed: dict[str, list[str]], total: int) -> None:
    left = [tag for repo in doomed for tag in images.list_tags(reg, repo)]
    deleted = sum(len(tags) for tags in doomed.values())
    assert len(left) == total - deleted, len(left)
    assert not any(tag.startswith("pr-") for tag in left)


def layout(reg: LocalRegistry, tmp: Path, n: int, repos: int, parallel: int) -> dict[str, float]:
    """Seed three copies, time ci-env on A and the skopeo loop on B, count requests on C."""
    copies = {}
    for copy in "abc":
        names = [f"bench{repos}-{copy}/r{i:03}" for i in range(repos)]
        copies[copy] = seed(reg, names, n)
    target = "{}/*" if repos > 1 else "{}/r000"
    config = docker_config(tmp / "direct", reg, reg.host)
    registry_cpu = reg.cpu_seconds()
    cienv, cienv_cpu = run_cienv(reg.host, target.format(f"bench{repos}-a"), config, parallel)
    registry_cpu = reg.cpu_seconds() - registry_cpu
    skopeo = run_skopeo_loop(reg.host, config, copies["b"])
    check_left(reg, copies["a"], n)
    check_left(reg, copies["b"], n)
    with FaultProxy(reg.url, lifetime=3600) as proxy:
        counted = docker_config(tmp / "proxy", reg, proxy.host)
        run_cienv(proxy.host, target.format(f"bench{repos}-c"), counted, parallel)
        requests = proxy.count()
    deleted = sum(len(tags) for tags in copies["a"].values())
    return {
        "cienv": cienv,
        "skopeo": skopeo,
        "requests": requests,
        "deleted": deleted,
        "registry_cpu": registry_cpu,
        "cienv_cpu": cienv_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="tags per layout (2000)")
    parser.add_argument("--repos", type=int, default=20, help="repositories, 2nd layout (20)")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument(
        "--auth",
        choices=("token", "htpasswd"),
        default="token",
        help="registry auth: Bearer tokens as hosted registries use (default), or htpasswd "
        "Basic, where the registry checks a bcrypt hash on every request",
    )
    args = parser.parse_args()
    reg = LocalRegistry(args.auth, lifetime=3600).start()
    results = {}
    try:
        for repos in (1, args.repos):
            print(f"seeding 3 x {args.n} tags in {repos} repositories ...", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                results[repos] = layout(reg, Path(tmp), args.n, repos, args.parallel)
    finally:
        reg.close()
    cores = os.cpu_count() or 1
    print(
        f"\nN={args.n} tags, half deleted; {args.auth} auth; ci-env --parallel {args.parallel};"
        f" {cores} cores; one run each"
    )
    print(
        "| layout | ci-env cleanup | skopeo delete loop | ratio | requests per deleted tag "
        "| CPU in the ci-env run: registry / ci-env | registry bound |"
    )
    print("|---|---|---|---|---|---|---|")
    for repos, r in results.items():
        bound = r["skopeo"] / (r["registry_cpu"] / cores)
        print(
            f"| {repos} repositor{'y' if repos == 1 else 'ies'} | {r['cienv']:.2f} s "
            f"| {r['skopeo']:.2f} s | {r['skopeo'] / r['cienv']:.1f}x "
            f"| {r['requests'] / r['deleted']:.3f} "
            f"| {r['registry_cpu']:.1f} s / {r['cienv_cpu']:.1f} s | {bound:.1f}x |"
        )


if __name__ == "__main__":
    main()
