"""The network case of `cleanup_bench.py`: the local registry behind a round trip of RTT ms.

Every request of ci-env and of the skopeo loops, token requests included, goes through
`tests.support.latencyproxy.Network`, which sleeps RTT before forwarding (per connection, so
concurrent requests stay concurrent) and counts requests by method. Seeding goes straight to
the registry. One repository per policy and one for its skopeo loop, N tags each, alternately
`keep-<i>` (created yesterday) and `pr-<i>` (created 2024-01-01): both policies doom the same
half, deterministically, so a re-seed pushes byte-identical images (same digests) and a cache
kept from the first run is still valid. By name, `bare_client.py` runs too, on the same
repository after ci-env's `--parallel 32` row: the requests that case needs and nothing else,
from a requests client on 32 threads.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cleanup_common import (
    AGE_LOOP,
    DELETE_LOOP,
    Cli,
    check_left,
    children_cpu,
    docker_config,
    run_cleanup,
    run_loop,
)

from tests.support import images
from tests.support.latencyproxy import Network
from tests.support.registry import LocalRegistry

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
POLICIES = {
    "by age": ["--delete-older-than", "30d"],
    "by name": ["--delete-tag", "pr-.*", "--keep-newer-than", "0s"],
}
FAST = 32  # the --parallel of the extra by-name row
BARE = Path(__file__).with_name("bare_client.py")
FAST_RUN = f"first run, --parallel {FAST}"
BARE_RUN = f"bare requests client, {FAST} threads"


@dataclass
class Row:
    policy: str
    run: str
    seconds: float
    parallel: int
    methods: dict[str, int]
    listing: int
    deleted: int
    busy: float = 0.0  # seconds requests spent in the proxies, summed
    span: float = 0.0  # first request's arrival to the last answer
    cpu: float = 0.0  # CPU seconds of the ci-env process
    registry_cpu: float = 0.0  # CPU seconds the registry spent meanwhile
    harness_cpu: float = 0.0  # CPU seconds of this process meanwhile: the proxies, token server
    peak: int = 0  # most registry requests in flight at once
    loop: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.methods.values())

    def per_deleted(self) -> float:
        return (self.total - self.listing) / self.deleted

    def ideal(self, rtt_ms: float) -> float:
        return self.total * rtt_ms / 1000 / self.parallel

    def floor(self, rtt_ms: float) -> float:
        """The least time any client could take here: the ideal, or the CPU the registry and
        the harness needed spread over every core, whichever is longer."""
        cores = os.cpu_count() or 1
        return max(self.ideal(rtt_ms), (self.registry_cpu + self.harness_cpu) / cores)


@dataclass
class Case:
    reg: LocalRegistry
    net: Network
    config: Path
    tmp: Path
    cli: Cli
    n: int
    new: dt.datetime

    def tags(self) -> list[tuple[str, dt.datetime]]:
        return [(f"pr-{i}", OLD) if i % 2 else (f"keep-{i}", self.new) for i in range(self.n)]

    def seed(self, repo: str, only_doomed: bool = False) -> list[str]:
        """Seed (or re-seed the deleted half of) `repo`; returns the tags to delete."""
        tags = self.tags()
        if only_doomed:
            tags = [(name, created) for name, created in tags if created == OLD]
        images.seed_bulk(self.reg, repo, tags, workers=32)
        return [name for name, created in tags if created == OLD]

    def measure(self, policy: str, run: str, repo: str, options: list[str]) -> Row:
        parallel = FAST if "--parallel" in options else self.cli.parallel
        doomed = [name for name, created in self.tags() if created == OLD]
        self.net.reset_counts()
        xdg = {"XDG_CACHE_HOME": str(self.tmp / "xdg")}
        before = self.cpu()
        seconds, cpu = run_cleanup(self.net.host, repo, self.config, options, env=xdg)
        row = self.finish(policy, run, seconds, parallel, repo, doomed, before)
        row.cpu = cpu
        return row

    def cpu(self) -> tuple[float, float]:
        return self.reg.cpu_seconds(), time.process_time()

    def cpu_since(self, before: tuple[float, float]) -> tuple[float, float]:
        now = self.cpu()
        return now[0] - before[0], now[1] - before[1]

    def finish(
        self,
        policy: str,
        run: str,
        seconds: float,
        parallel: int,
        repo: str,
        doomed: list[str],
        before: tuple[float, float],
    ) -> Row:
        """The row of a run just finished: what the proxies saw, the CPU spent since `before`;
        checks that exactly `doomed` went."""
        methods = dict(self.net.methods())
        row = Row(policy, run, seconds, parallel, methods, self.net.listing(), len(doomed))
        row.busy, row.peak, row.span = self.net.busy(), self.net.registry.peak, self.net.span()
        row.registry_cpu, row.harness_cpu = self.cpu_since(before)
        check_left(self.reg, {repo: doomed}, self.n)
        print(f"  {policy}, {run}: {seconds:.2f} s, {row.total} requests", flush=True)
        return row

    def bare(self, repo: str) -> Row:
        """`bare_client.py` by name on the re-seeded half: the least a requests client sends."""
        doomed = self.seed(repo, only_doomed=True)
        self.net.reset_counts()
        before, cpu = self.cpu(), children_cpu()
        start = time.perf_counter()
        secrets = {"BARE_USER": self.reg.username, "BARE_PASSWORD": self.reg.password}
        args = [self.net.host, repo, POLICIES["by name"][1], str(FAST)]
        env = {**os.environ, **secrets}  # the test registry's own, never in argv
        subprocess.run([sys.executable, str(BARE), *args], env=env, check=True)
        seconds = time.perf_counter() - start
        row = self.finish("by name", BARE_RUN, seconds, FAST, repo, doomed, before)
        row.cpu = children_cpu() - cpu
        return row

    def loop(self, policy: str) -> tuple[float, Row]:
        """The skopeo loop for `policy` on its own copy; its time and requests."""
        repo = f"net-{policy.replace(' ', '-')}-loop"
        doomed = self.seed(repo)
        refs = [f"docker://{self.net.host}/{repo}:{name}" for name, _ in self.tags()]
        self.net.reset_counts()
        before = self.cpu()
        if policy == "by age":
            cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
            seconds = run_loop(AGE_LOOP, self.config, [str(int(cutoff.timestamp())), *refs])
        else:
            pr_refs = [ref for ref in refs if ref.rsplit(":", 1)[1].startswith("pr-")]
            seconds = run_loop(DELETE_LOOP, self.config, pr_refs)
        return seconds, self.finish(policy, "skopeo loop", seconds, 1, repo, doomed, before)


def policy_rows(case: Case, policy: str) -> tuple[list[Row], Row]:
    repo = f"net-{policy.replace(' ', '-')}"
    case.seed(repo)
    options = POLICIES[policy]
    cache = ["--cache-dir", str(case.tmp / f"cache-{repo}")] if case.cli.cache_dir else []
    rows = [case.measure(policy, "first run", repo, options + cache)]
    if case.cli.cache_dir:
        case.seed(repo, only_doomed=True)
        rows.append(case.measure(policy, "cached re-run", repo, options + cache))
    if policy == "by name":
        case.seed(repo, only_doomed=True)
        fresh = ["--cache-dir", str(case.tmp / "cache-fast")] if case.cli.cache_dir else []
        fast = options + ["--parallel", str(FAST), *fresh]
        rows.append(case.measure(policy, FAST_RUN, repo, fast))
        rows.append(case.bare(repo))
    loop, loop_row = case.loop(policy)
    for row in rows:
        row.loop = loop
    return rows, loop_row


def cache_parent() -> Path:
    """Where the caches go: under ~/.cache, where a user's cache is (`$XDG_CACHE_HOME`'s
    default), not in /tmp, which can be another file system (tmpfs) or, on some machines, one
    where creating a file costs 40x more (0.8 ms against 17 us on the same disk, seen here)."""
    parent = Path.home() / ".cache"
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def run(reg: LocalRegistry, cli: Cli, n: int, rtt_ms: float) -> list[Row]:
    """All rows of the network case: per policy, ci-env's runs, then the skopeo loop's row."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(dir=cache_parent()) as tmp,
        Network(reg, rtt_ms / 1000) as net,
    ):
        config = docker_config(Path(tmp) / "docker", reg, net.host)
        case = Case(reg, net, config, Path(tmp), cli, n, today - dt.timedelta(days=1))
        for policy in POLICIES:
            print(f"{policy}: seeding {n} tags ...", flush=True)
            cienv_rows, loop_row = policy_rows(case, policy)
            rows += [*cienv_rows, loop_row]
    return rows


def print_table(rows: list[Row], rtt_ms: float) -> None:
    """Two tables: the figures, then where the time went."""
    print(
        "| policy | run | ci-env | skopeo loop | ratio | requests per deleted tag "
        "| ideal: requests x RTT / parallel | ci-env / ideal "
        "| floor: max(ideal, (registry + harness CPU) / cores) | ci-env / floor "
        "| best ratio on this machine: loop / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        is_loop = row.run == "skopeo loop"
        ideal, floor = row.ideal(rtt_ms), row.floor(rtt_ms)
        loop = row.seconds if is_loop else row.loop
        print(
            f"| {row.policy} | {row.run} (parallel {row.parallel}) "
            f"| {'' if is_loop else f'{row.seconds:.2f} s'} | {loop:.2f} s "
            f"| {'' if is_loop else f'{row.loop / row.seconds:.1f}x'} "
            f"| {row.per_deleted():.2f} | {ideal:.2f} s "
            f"| {f'{row.seconds / ideal:.2f}' if ideal else '-'} | {floor:.2f} s "
            f"| {row.seconds / floor:.2f} | {'' if is_loop else f'{loop / floor:.1f}x'} |"
        )
    print(
        "\n| policy | run | listing requests | requests by method | first request to last answer "
        "| requests in flight: mean / peak | time per request in the proxy (RTT + registry) "
        "| CPU: ci-env / registry / harness (proxies, token server) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        methods = " ".join(f"{name} {count}" for name, count in sorted(row.methods.items()))
        cpu = f"{row.cpu:.2f} s" if row.cpu else "-"
        print(
            f"| {row.policy} | {row.run} | {row.listing} | {methods} | {row.span:.2f} s "
            f"| {row.busy / row.seconds:.1f} / {row.peak} "
            f"| {row.busy / row.total * 1000:.0f} ms "
            f"| {cpu} / {row.registry_cpu:.2f} s / {row.harness_cpu:.2f} s |"
        )
    print_bare(rows)


def print_bare(rows: list[Row]) -> None:
    """ci-env at --parallel 32 against the bare client: what ci-env adds to the least any
    requests client sends, and the best ratio such a client reached in this run."""
    bare = next((row for row in rows if row.run == BARE_RUN), None)
    fast = next((row for row in rows if row.run == FAST_RUN), None)
    if bare is None or fast is None:
        return
    print(
        f"\nby name, {FAST} in flight: ci-env {fast.seconds:.2f} s, the bare requests client "
        f"{bare.seconds:.2f} s (ci-env / bare {fast.seconds / bare.seconds:.2f}); the loop over "
        f"the bare client: {bare.loop / bare.seconds:.1f}x, the most a client on requests "
        "reached here"
    )
