"""Fault scenarios for cleanup, shared by `test_faults.py` and `bench/reliability_report.py`.

One scenario: seed two repositories on a real registry (distinct images, a deletable tag that
shares its digest with a kept tag, so the untag ladder runs too), plan with a dry run straight
against the registry (the oracle), then run `ci-env cleanup` through a `FaultProxy` injecting
the fault, re-running while it exits non-zero (at most `max_runs`). Afterwards, read directly
from the registry: every kept tag still points at its planned digest, every planned deletion
is gone, and the first run's JSON report names every seeded tag.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import faultproxy as fp
from tests.support.harness import TRACEBACK, Result, base_env, run_cli, write_auth_config
from tests.support.images import list_tags, seed_bulk, tag
from tests.support.registry import LocalRegistry

REPOS = ("rel/app-a", "rel/app-b")
IMAGES = 14  # per repository, plus two extra tags
POLICY = ["--keep-latest", "4", "--keep-tag", "keep-.*", "--keep-newer-than", "2h"]
# Small bounds so a fault costs seconds, not minutes; enough attempts to outlast each burst.
FAST = ["--timeout", "1.5", "--max-attempts", "6", "--max-retry-seconds", "20", "--parallel", "4"]
MANIFESTS = r"/manifests/"
TAGS = r"/tags/list"

FaultFactory = Callable[[LocalRegistry], list[fp.Fault]]


@dataclass
class Outcome:
    fault: str
    runs: int = 0
    planned: int = 0  # tags the plan removes (delete + untag)
    deleted: int = 0  # planned removals that are done
    wrongly_deleted: list[str] = field(default_factory=list)  # kept tags gone or moved
    missing: list[str] = field(default_factory=list)  # planned removals still there
    unreported: list[str] = field(default_factory=list)  # seeded tags absent from the report
    retries: int = 0  # failed attempts the proxy saw (each forces a retry or a re-run)
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.wrongly_deleted or self.missing or self.unreported)

    def assert_converged(self, *, injected: bool = True) -> None:
        """Nothing kept was lost, every planned removal is done and reported, the last run
        exited 0 without a traceback, and (when `injected`) the fault really happened."""
        logs = "\n".join(r.describe() for r in self.results)
        assert not self.wrongly_deleted, f"kept tags lost: {self.wrongly_deleted}\n{logs}"
        assert not self.missing, f"planned removals left after re-runs: {self.missing}\n{logs}"
        assert not self.unreported, f"tags missing from the report: {self.unreported}\n{logs}"
        assert self.results[-1].code == 0, logs
        assert all(TRACEBACK not in r.output for r in self.results), logs
        assert self.planned > 0
        assert self.deleted == self.planned
        if injected:
            assert self.retries > 0, "the fault was never injected"


def _restart_mid_run(reg: LocalRegistry) -> list[fp.Fault]:
    def kill(method: str, path: str) -> None:
        reg.stop()
        threading.Timer(1.0, reg.start).start()

    return [fp.hook(kill, method="DELETE", skip=2)]


SCENARIOS: dict[str, FaultFactory] = {
    "none": lambda reg: [],
    "429 Retry-After seconds (DELETE)": lambda reg: [fp.rate_limited(1, times=3, method="DELETE")],
    "429 Retry-After date (tags/list)": lambda reg: [
        fp.rate_limited(1, as_date=True, times=2, path=TAGS)
    ],
    "500 burst x3 (DELETE)": lambda reg: [fp.burst(500, 3, method="DELETE")],
    "502 burst x3 (manifest GET/HEAD)": lambda reg: [
        fp.burst(502, 3, method="HEAD", path=MANIFESTS),
        fp.burst(502, 3, method="GET", path=MANIFESTS),
    ],
    "503 burst x4 (any)": lambda reg: [
        fp.status(503, times=4, skip=3, headers={"Retry-After": "0"})
    ],
    "slow DELETE past timeout (done upstream)": lambda reg: [
        fp.slow(2.5, times=2, method="DELETE", forward=True)
    ],
    "slow tags/list past timeout": lambda reg: [fp.slow(2.5, path=TAGS, forward=False)],
    "dropped mid-response (tags/list, manifest)": lambda reg: [
        fp.drop(after_bytes=20, path=TAGS),
        fp.drop(after_bytes=50, times=2, method="GET", path=MANIFESTS),
    ],
    "connection reset (DELETE, PUT)": lambda reg: [
        fp.reset(times=2, method="DELETE"),
        fp.reset(times=1, method="PUT"),
    ],
    "registry killed and restarted mid-run": _restart_mid_run,
}


def seed(reg: LocalRegistry, repo: str) -> None:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    seed_bulk(reg, repo, [(f"b{i:02d}", base + dt.timedelta(days=i)) for i in range(IMAGES)])
    tag(reg, repo, "b01", "keep-old")  # b01 is deleted by the policy but keep-old needs it
    tag(reg, repo, "b12", "also-new")  # shares a kept digest


def _plan(reg: LocalRegistry, home: Path, env: dict[str, str]) -> dict[str, dict[str, tuple]]:
    """{repo: {tag: (action, digest)}} from a dry run straight against the registry."""
    out = home / "oracle-plan.json"
    args = ["cleanup", "--dry-run", "--plan-out", str(out), *POLICY, *FAST]
    for repo in REPOS:
        args += ["--repo", f"{reg.host}/{repo}"]
    result = run_cli(args, env)
    if result.code != 0:
        raise AssertionError(f"oracle dry run failed: {result.describe()}")
    plan = json.loads(out.read_text())
    return {
        r["repository"]: {i["tag"]: (i["action"], i["digest"]) for i in r["items"] if i["tag"]}
        for r in plan["repositories"]
    }


def _resolve(reg: LocalRegistry, repo: str, tag_name: str) -> str | None:
    from tests.support.images import ACCEPT  # noqa: PLC0415 - keeps the module import light

    answer = reg.session().head(
        f"/v2/{repo}/manifests/{tag_name}", headers={"Accept": ACCEPT}, timeout=30
    )
    return answer.headers.get("Docker-Content-Digest") if answer.status_code == 200 else None


def run_scenario(reg: LocalRegistry, name: str, home: Path, *, max_runs: int = 3) -> Outcome:
    """Seed, plan, run through the fault proxy until done; compare with the registry."""
    for repo in REPOS:
        seed(reg, repo)
    direct = write_auth_config(home / "direct", {reg.host: (reg.username, reg.password)})
    expected = _plan(reg, home, base_env(home, DOCKER_CONFIG=str(direct)))
    outcome = Outcome(name)
    outcome.planned = sum(a != "keep" for tags in expected.values() for a, _ in tags.values())
    started = time.monotonic()
    with fp.FaultProxy(reg.url, lifetime=300) as proxy:
        config = write_auth_config(home / "proxied", {proxy.host: (reg.username, reg.password)})
        env = base_env(home, DOCKER_CONFIG=str(config))
        proxy.add(*SCENARIOS[name](reg))
        report = home / "report-1.json"
        args = ["cleanup", *POLICY, *FAST, "--report-json", str(report)]
        for repo in REPOS:
            args += ["--repo", f"{proxy.host}/{repo}"]
        while outcome.runs < max_runs:
            outcome.runs += 1
            result = run_cli(args, env, timeout=240)
            outcome.results.append(result)
            args[-(2 * len(REPOS) + 1)] = str(home / f"report-{outcome.runs + 1}.json")
            if result.code == 0:
                break
        outcome.retries = sum(
            1 for r in proxy.records if r.fault or r.status in (0, 429) or r.status >= 500
        )
    outcome.seconds = time.monotonic() - started
    _compare(reg, expected, outcome, home / "report-1.json")
    return outcome


def _compare(
    reg: LocalRegistry, expected: dict[str, dict[str, tuple]], outcome: Outcome, report: Path
) -> None:
    reported: set[tuple[str, str]] = set()
    if report.exists():
        data = json.loads(report.read_text())
        for repo in data.get("repositories", []):
            name = repo["repo"].split("/", 1)[1]
            reported |= {(name, i["tag"]) for i in repo.get("items", []) if i.get("tag")}
    for repo, tags in expected.items():
        present = set(list_tags(reg, repo))
        for tag_name, (action, digest) in tags.items():
            where = f"{repo}:{tag_name}"
            if (repo, tag_name) not in reported:
                outcome.unreported.append(where)
            if action == "keep":
                if tag_name not in present or _resolve(reg, repo, tag_name) != digest:
                    outcome.wrongly_deleted.append(where)
            elif tag_name in present:
                outcome.missing.append(where)
            else:
                outcome.deleted += 1
