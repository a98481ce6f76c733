"""`ci-env cleanup` re-run with the same cache directory, on the real registry behind the fault
proxy (which counts requests): what never changes is not fetched again."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.support import images
from tests.support.clirun import base_env, run_cli
from tests.support.faultproxy import FaultProxy
from tests.support.registry import LocalRegistry

REPO = "grp/cached"
OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def env_for(tmp_path: Path, reg: LocalRegistry, host: str) -> dict[str, str]:
    config = tmp_path / "docker"
    config.mkdir(mode=0o700, exist_ok=True)
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": reg.auth_entry()}}}))
    return base_env(tmp_path, DOCKER_CONFIG=str(config))


def age_dry_run(env: dict[str, str], host: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "cleanup", "--repo", f"{host}/{REPO}", "--delete-older-than", "30d", "--dry-run",
        *extra, env=env, timeout=120,
    )  # fmt: skip


def requests_by_kind(proxy: FaultProxy) -> Counter[str]:
    """Requests answered other than by a 401 challenge, by method and what they read."""
    kinds: Counter[str] = Counter()
    for r in proxy.records:
        if r.status == 401:
            continue
        what = "blob" if "/blobs/" in r.path else "other"
        if "/manifests/" in r.path:
            what = "manifest-digest" if "/manifests/sha" in r.path else "manifest-tag"
        kinds[f"{r.method} {what}"] += 1
    return kinds


def planned(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("  would-delete")]


@pytest.mark.slow
def test_a_re_run_with_the_same_cache_fetches_no_manifest_by_digest_and_no_config(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    seeded = [(f"old-{n}", OLD + dt.timedelta(days=n)) for n in range(6)]
    seeded += [(f"new-{n}", now - dt.timedelta(days=n)) for n in range(6)]
    images.seed_bulk(registry, REPO, seeded)
    cache = tmp_path / "cache"
    with FaultProxy(registry.url) as proxy:
        env = env_for(tmp_path, registry, proxy.host)
        first = age_dry_run(env, proxy.host, "--cache-dir", str(cache))
        assert first.returncode == 0, first.stderr
        assert requests_by_kind(proxy)["GET blob"] > 0  # the first run does read them
        proxy.reset_counts()
        again = age_dry_run(env, proxy.host, "--cache-dir", str(cache))
        kinds = requests_by_kind(proxy)
    assert again.returncode == 0, again.stderr
    assert planned(again) == planned(first)
    assert len(planned(again)) == 6
    assert kinds["GET blob"] == 0, kinds
    assert kinds["GET manifest-digest"] == 0, kinds
    print(dict(kinds))


@pytest.mark.slow
def test_no_cache_writes_no_cache_directory(registry: LocalRegistry, tmp_path: Path) -> None:
    images.seed_bulk(registry, REPO, [("old-1", OLD)])
    env = env_for(tmp_path, registry, registry.host)
    done = age_dry_run(env, registry.host, "--no-cache")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".cache").exists()
    default = age_dry_run(env, registry.host)
    assert default.returncode == 0, default.stderr
    assert list((tmp_path / ".cache/ci-env/blobs/sha256").iterdir())  # HOME's default
