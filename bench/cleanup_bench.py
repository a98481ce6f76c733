"""Benchmark: `ci-env cleanup` against a hand-written skopeo loop on identical seeds.

Starts its own local `docker-registry` (Bearer tokens or htpasswd, delete enabled).

Without `--rtt` (no latency: the registry on this machine, its CPU the bound), two layouts of N
tags (every tag its own image; in every repository, alternately `keep-<i>` and `pr-<i>`), each
seeded three times:
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

With `--rtt MS` (the network case, `cleanup_network.py`): N tags (default 1000) in one
repository behind a proxy that adds MS ms to every request, the token server's too; ci-env and
the skopeo loops both go through it. Per policy, by age (`--delete-older-than 30d`; the loop
`skopeo inspect`s each tag for `Created`, then deletes the old ones) and by name
(`--delete-tag 'pr-.*' --keep-newer-than 0s`; the loop `skopeo delete`s each pr- tag): ci-env's
first run (empty `--cache-dir`), its cached re-run (same cache, the deleted half re-seeded with
identical digests), by name also `--parallel 32`; the skopeo loop once per policy. Prints each
time, the ratio, requests per deleted tag (listing pages apart), requests by method, the ideal
time (requests x RTT / parallel) and ci-env's time over it, then the CPU the registry and the
harness (proxies, token server) spent meanwhile, the floor it implies (max(ideal, that CPU /
cores): what a client costing nothing could reach on this machine) and ci-env's time over it.

ci-env runs from this checkout, byte-compiled first as an installed package is.
Both cases end with ci-env's start-up: the median of 5 runs of `ci-env --version` and
`ci-env env --no-login`.

Usage: python bench/cleanup_bench.py [-n N] [--repos R] [--parallel P] [--auth token|htpasswd]
       python bench/cleanup_bench.py --rtt MS [-n N] [--auth token|htpasswd]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import cleanup_network
from cleanup_common import (
    DELETE_LOOP,
    check_left,
    cli_features,
    compile_bytecode,
    docker_config,
    run_cleanup,
    run_loop,
    startup,
)

from tests.support import images
from tests.support.faultproxy import FaultProxy
from tests.support.registry import LocalRegistry

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


def run_cienv(host: str, repo: str, config: Path, parallel: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the ci-env process) of the by-name cleanup."""
    options = ["--delete-tag", "pr-.*", "--keep-newer-than", "0s", "--parallel", str(parallel)]
    # A cache of its own per run (where ci-env has one): the copies share digests.
    cache = {"XDG_CACHE_HOME": str(config.parent / f"cache-{repo.replace('/', '-')}")}
    return run_cleanup(host, repo, config, options, env=cache)


def run_skopeo_loop(host: str, config: Path, doomed: dict[str, list[str]]) -> float:
    refs = [f"docker://{host}/{repo}:{tag}" for repo, tags in doomed.items() for tag in tags]
    return run_loop(DELETE_LOOP, config, refs)


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


def layouts(reg: LocalRegistry, args: argparse.Namespace) -> None:
    """The no-latency case: one repository, then R repositories, straight to the registry."""
    results = {}
    for repos in (1, args.repos):
        print(f"seeding 3 x {args.n} tags in {repos} repositories ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results[repos] = layout(reg, Path(tmp), args.n, repos, args.parallel)
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


def network(reg: LocalRegistry, args: argparse.Namespace) -> None:
    cli = cli_features()
    rows = cleanup_network.run(reg, cli, args.n, args.rtt)
    print(
        f"\nN={args.n} tags in one repository, half deleted; RTT {args.rtt:g} ms on every "
        f"request (token server too); {args.auth} auth; default --parallel {cli.parallel}; "
        f"{os.cpu_count() or 1} cores; one run each (the skopeo loop once per policy)"
    )
    cleanup_network.print_table(rows, args.rtt)
    if not cli.cache_dir:
        print("no cached re-run: this checkout's `ci-env cleanup` has no --cache-dir")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n", type=int, help="tags per layout (2000), or per repository with --rtt (1000)"
    )
    parser.add_argument(
        "--rtt",
        type=float,
        metavar="MS",
        help="the network case instead of the layouts: MS milliseconds added to every request "
        "(0: through the proxy without delay)",
    )
    parser.add_argument("--repos", type=int, default=20, help="repositories, 2nd layout (20)")
    parser.add_argument("--parallel", type=int, default=8, help="ci-env's, in the layouts (8)")
    parser.add_argument(
        "--auth",
        choices=("token", "htpasswd"),
        default="token",
        help="registry auth: Bearer tokens as hosted registries use (default), or htpasswd "
        "Basic, where the registry checks a bcrypt hash on every request",
    )
    args = parser.parse_args()
    if args.n is None:
        args.n = 2000 if args.rtt is None else 1000
    started, load = time.perf_counter(), os.getloadavg()[0]
    compile_bytecode()
    reg = LocalRegistry(args.auth, lifetime=3600).start()
    try:
        (layouts if args.rtt is None else network)(reg, args)
    finally:
        reg.close()
    print("\nstart-up, median of 5 runs:")
    for name, seconds in startup().items():
        print(f"  {name}: {seconds:.3f} s")
    print(
        f"whole benchmark: {time.perf_counter() - started:.0f} s; load average (1 min) "
        f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
