"""Faults in front of native API fakes (GitHub REST, Docker Hub), for `test_native_faults.py`
and `bench/reliability_report.py`.

The scenario of `tests/registries/test_cli_native.py` (`seed`): X: v1, pr-1 (pr-1 untagged),
Y: pr-2 and Z: pr-3, pr-4 (deleted), W: main (kept), with `--delete-tag pr-.*`. A dry run
straight against the fake is the oracle; then `ci-env cleanup` runs with the fault proxy
between it and the fake's API (the registry side stays direct), re-run while it exits non-zero.
The final tags must equal the plan's kept tags, each on its planned digest.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes._front import Front
from tests.fakes.dockerhub_api import FakeDockerHub
from tests.fakes.github_api import TOKEN, FakeGitHub
from tests.support import faultproxy as fp
from tests.support.harness import base_env, run_cli, write_auth_config
from tests.support.native_seed import real_state, seed
from tests.support.registry import LocalRegistry
from tests.support.scenarios import Outcome

POLICY = ["--keep-newer-than", "0s", "--delete-tag", "pr-.*"]
FAST = ["--timeout", "1.5", "--max-attempts", "5", "--max-retry-seconds", "20"]
VERSIONS = r"/packages/container/.*/versions$"
HUB_TAGS = r"/namespaces/[^/]+/repositories/[^/]+/tags/?$"

SCENARIOS: dict[str, dict[str, Callable[[], list[fp.Fault]]]] = {
    "github": {
        "429 Retry-After (versions list)": lambda: [
            fp.rate_limited(1, times=2, method="GET", path=VERSIONS)
        ],
        "503 burst x3 (version DELETE)": lambda: [fp.burst(503, 3, method="DELETE")],
        "dropped mid-response (versions list)": lambda: [
            fp.drop(after_bytes=40, times=2, method="GET", path=VERSIONS)
        ],
    },
    "dockerhub": {
        "429 Retry-After (tags list)": lambda: [
            fp.rate_limited(1, times=2, method="GET", path=HUB_TAGS)
        ],
        "503 burst x3 (tag DELETE)": lambda: [fp.burst(503, 3, method="DELETE")],
        "connection reset (tag DELETE)": lambda: [fp.reset(times=2, method="DELETE")],
    },
}


@dataclass
class Native:
    """One kind's fake, ready: its API URL, the CLI environment, and its tag state."""

    kind: str
    api_url: str
    env: dict[str, str]
    state: Callable[[], dict[str, str]]  # tag -> digest, as the fake now serves them
    ref: str


@contextmanager
def _github(reg: LocalRegistry, home: Path) -> Iterator[Native]:
    seed(reg, "acme/app")
    api = FakeGitHub(registry=reg, lifetime=240).start()
    config = write_auth_config(home / "docker", {reg.host: (reg.username, reg.password)})
    # Fast pacing: the backend's delete pace and throwaway-version waits are for real GitHub.
    env = {"DOCKER_CONFIG": str(config), "GITHUB_TOKEN": TOKEN}
    try:
        yield Native(
            "github", api.url, env, lambda: real_state(reg, "acme/app"), f"{reg.host}/acme/app"
        )
    finally:
        api.stop()


@contextmanager
def _dockerhub(reg: LocalRegistry, home: Path) -> Iterator[Native]:
    digests = seed(reg, "acme/app")
    hub = FakeDockerHub("")
    old = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    hub.repos["acme/app"] = {t: (d, old) for t, d in digests.items()}
    front = Front(hub, lifetime=240).start()
    config = write_auth_config(home / "docker", {reg.host: (reg.username, reg.password)})
    env = {
        "DOCKER_CONFIG": str(config),
        "CIENV_REPO_DOCKER_HUB_USERNAME": "ci",
        "CIENV_REPO_DOCKER_HUB_PASSWORD": "hub-password",
    }
    try:
        yield Native(
            "dockerhub",
            front.url,
            env,
            lambda: {t: d for t, (d, _) in hub.repos["acme/app"].items()},
            f"{reg.host}/acme/app",
        )
    finally:
        front.stop()


KINDS = {"github": _github, "dockerhub": _dockerhub}


def _api_env(kind: str, url: str) -> dict[str, str]:
    return {"GITHUB_API_URL": url} if kind == "github" else {"CIENV_REPO_API_URL": url}


def run_native(reg: LocalRegistry, kind: str, fault: str, home: Path, max_runs: int = 3) -> Outcome:
    outcome = Outcome(f"{kind}: {fault}")
    with KINDS[kind](reg, home) as native:
        env = base_env(home, **native.env, **_api_env(kind, native.api_url))
        base = ["cleanup", "--repo", native.ref, "--repo-container-registry", kind, *POLICY, *FAST]
        plan_path = home / "oracle.json"
        oracle = run_cli([*base, "--dry-run", "--plan-out", str(plan_path)], env)
        assert oracle.code == 0, oracle.describe()
        items = json.loads(plan_path.read_text())["repositories"][0]["items"]
        plan = {i["tag"]: (i["action"], i["digest"]) for i in items if i["tag"]}
        outcome.planned = sum(action != "keep" for action, _ in plan.values())
        started = time.monotonic()
        with fp.FaultProxy(native.api_url, lifetime=240) as proxy:
            proxy.add(*SCENARIOS[kind][fault]())
            env.update(_api_env(kind, proxy.url))
            report = home / "report.json"
            while outcome.runs < max_runs:
                outcome.runs += 1
                result = run_cli([*base, "--report-json", str(report)], env, timeout=180)
                outcome.results.append(result)
                if result.code == 0:
                    break
                report = home / f"report-{outcome.runs + 1}.json"
            outcome.retries = sum(
                1 for r in proxy.records if r.fault or r.status in (0, 429) or r.status >= 500
            )
        outcome.seconds = time.monotonic() - started
        state = native.state()
        # The last run's report (the one that finished) accounts for every tag; a run that
        # failed closed on a fault may report nothing.
        reported = json.loads(report.read_text()) if report.exists() else {}
        tags_reported = {
            i["tag"] for r in reported.get("repositories", []) for i in r["items"] if i["tag"]
        }
        for name, (action, digest) in plan.items():
            if name not in tags_reported:
                outcome.unreported.append(name)
            if action == "keep":
                if state.get(name) != digest:
                    outcome.wrongly_deleted.append(name)
            elif name in state:
                outcome.missing.append(name)
            else:
                outcome.deleted += 1
    return outcome
