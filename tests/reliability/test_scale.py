"""Scale: 20,000 tags in one repository, and 200 repositories split with `--shard`.

Tags and repositories are laid out in the registry's storage (`seed_tags_on_disk`, copied
repository trees) next to a few really pushed images, so seeding takes seconds; everything
ci-env does goes through the real registry's HTTP API. Memory is the child's peak RSS
(`os.wait4`), time is wall clock; both bounds are generous for 2 cores but would catch a
quadratic listing or a plan held several times over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.harness import base_env, write_auth_config
from tests.support.images import list_tags, push_image, seed_tags_on_disk, tag
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.timeout(180)

TAGS = 20_000
MAX_RSS_MB = 300
MAX_SECONDS = 120  # measured ~46 s on 2 cores: 20,000 manifest HEADs
REPOS = 200
SHARDS = 4


def run_measured(args: list[str], env: dict[str, str]) -> tuple[harness.Result, float]:
    """Run ci-env; return its result and its peak resident memory in MB (ru_maxrss, KiB)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # Files, not pipes: the child is reaped by `wait4` (which reports its rusage), not by
        # `communicate()`.
        proc = subprocess.Popen(
            harness.command(args), env=env, stdout=out, stderr=err, text=True, cwd=harness.ROOT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return harness.Result(args, proc.returncode, stdout, stderr, seconds), usage.ru_maxrss / 1024


def test_20000_tags_listed_and_planned_in_bounded_memory_and_time(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    repo = "scale/big"
    push_image(registry, repo, "base", seed="base", via="http")
    push_image(registry, repo, "release-1", seed="r1", via="http")
    push_image(registry, repo, "pr-old", seed="pr", via="http")
    names = [f"build-{i:05d}" for i in range(TAGS)]
    assert seed_tags_on_disk(registry, repo, "base", names) == TAGS
    tag(registry, repo, "base", "keep-me")

    config = registry.write_docker_config(tmp_path / "docker")
    env = base_env(tmp_path, DOCKER_CONFIG=str(config))
    plan_path = tmp_path / "plan.json"
    args = [
        "cleanup", "--repo", f"{registry.host}/{repo}", "--dry-run", "--plan-out",
        str(plan_path), "--keep-newer-than", "0s", "--keep-tag", "keep-.*|release-.*",
        "--delete-tag", r"build-0\d+|pr-.*", "--parallel", "16",
    ]  # fmt: skip
    result, peak_mb = run_measured(args, env)
    assert result.code == 0, result.describe()[-3000:]
    plan = json.loads(plan_path.read_text())
    (only,) = plan["repositories"]
    actions = Counter(item["action"] for item in only["items"] if item["tag"])
    # build-0xxxx (10,000) share `base` with kept tags: untagged only; pr-old is deleted.
    assert sum(actions.values()) == TAGS + 4
    assert actions == {"untag": 10_000, "delete": 1, "keep": TAGS - 10_000 + 3}, actions
    assert peak_mb < MAX_RSS_MB, f"peak RSS {peak_mb:.0f} MB"
    assert result.seconds < MAX_SECONDS, f"{result.seconds:.1f}s"
    assert len(list_tags(registry, repo)) == TAGS + 4  # a dry run changes nothing
    print(f"\n20,000 tags: planned in {result.seconds:.1f}s, peak RSS {peak_mb:.0f} MB")


def _fleet(reg: LocalRegistry) -> list[str]:
    """200 repositories, each: v1 (kept), pr-1 (its own image: deleted), pr-2 (on v1: untag)."""
    push_image(reg, "tmpl/app", "v1", seed="keep", via="http")
    push_image(reg, "tmpl/app", "pr-1", seed="gone", via="http")
    tag(reg, "tmpl/app", "v1", "pr-2")
    base = reg.storage / "docker/registry/v2/repositories"
    names = [f"fleet/r{i:03d}" for i in range(REPOS)]
    for name in names:
        shutil.copytree(base / "tmpl/app", base / name)
    return names


def test_200_repositories_split_by_shard_exactly(registry: LocalRegistry, tmp_path: Path) -> None:
    names = _fleet(registry)
    auth = {registry.host: (registry.username, registry.password)}
    config = write_auth_config(tmp_path / "docker", auth)
    env = base_env(tmp_path, DOCKER_CONFIG=str(config))
    common = ["cleanup", "--repo", f"{registry.host}/fleet/*", "--keep-newer-than", "0s",
              "--delete-tag", "pr-.*", "--parallel", "8"]  # fmt: skip

    def plan(index: int) -> dict[str, dict[str, str]]:
        out = tmp_path / f"plan-{index}.json"
        args = [*common, "--shard", f"{index}/{SHARDS}", "--dry-run", "--plan-out", str(out)]
        result = harness.run_cli(args, env, timeout=150)
        assert result.code == 0, result.describe()[-3000:]
        data = json.loads(out.read_text())
        return {
            r["repository"]: {i["tag"]: i["action"] for i in r["items"] if i["tag"]}
            for r in data["repositories"]
        }

    with ThreadPoolExecutor(SHARDS) as pool:
        plans = list(pool.map(plan, range(1, SHARDS + 1)))
    shards = [set(p) for p in plans]
    assert all(shards), [len(s) for s in shards]
    assert sum(len(s) for s in shards) == REPOS  # no repository in two shards
    assert set().union(*shards) == set(names)  # and none left out
    expected = {"v1": "keep", "pr-1": "delete", "pr-2": "untag"}
    assert all(tags == expected for p in plans for tags in p.values())

    def apply(index: int) -> harness.Result:
        report = tmp_path / f"report-{index}.json"
        args = [*common, "--shard", f"{index}/{SHARDS}", "--report-json", str(report)]
        return harness.run_cli(args, env, timeout=150)

    with ThreadPoolExecutor(SHARDS) as pool:  # four CI jobs at once, as a parallel matrix would
        results = list(pool.map(apply, range(1, SHARDS + 1)))
    assert all(r.code == 0 for r in results), [r.describe()[-2000:] for r in results]
    reported: Counter[str] = Counter()
    for index in range(1, SHARDS + 1):
        report = json.loads((tmp_path / f"report-{index}.json").read_text())
        for repo in report["repositories"]:
            reported[repo["repo"].split("/", 1)[1]] += 1
    assert reported == Counter(dict.fromkeys(names, 1))
    for name in names:
        assert list_tags(registry, name) == ["v1"], name
    assert list_tags(registry, "tmpl/app") == ["pr-1", "pr-2", "v1"]  # outside the pattern
