"""What a cleanup costs in requests on the plain Docker Registry API (issue 15).

40 tags, half of them deleted, counted by the fault proxy in front of the real registry. Each
tag is resolved by one GET of its manifest (no HEAD, no second GET for the graph walk or the
time read, no re-read before deleting); a config blob is read only where a rule needs a time.
Listing pages, `/v2/` and the 401 challenges are left out of the per-tag figures.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.support import images
from tests.support.cleanup_cli import cli_env
from tests.support.faultproxy import FaultProxy, Record
from tests.support.harness import run_cli
from tests.support.registry import LocalRegistry

REPO = "count/app"
OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
HALF = 20
pytestmark = pytest.mark.slow


def seed(registry: LocalRegistry) -> None:
    """pr-NN: old images (deleted by age or by name); v-NN: fresh ones, each its own config."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tags = [(f"pr-{i:02d}", OLD + dt.timedelta(seconds=i)) for i in range(HALF)]
    tags += [(f"v-{i:02d}", now - dt.timedelta(seconds=i)) for i in range(HALF)]
    images.seed_bulk(registry, REPO, tags)


def counted(record: Record) -> bool:
    listing = record.path.endswith("/tags/list") or record.path == "/v2/"
    return record.status != 401 and not listing


def run(registry: LocalRegistry, tmp_path: Path, *policy: str) -> list[Record]:
    with FaultProxy(registry.url, lifetime=120) as proxy:
        env = cli_env(tmp_path, registry, proxy.host)
        done = run_cli(["cleanup", "--repo", f"{proxy.host}/{REPO}", *policy], env, timeout=120)
        records = proxy.records
    assert done.code == 0, done.describe()
    assert images.list_tags(registry, REPO) == [f"v-{i:02d}" for i in range(HALF)]
    return [r for r in records if counted(r)]


def test_by_name_costs_one_get_per_tag_and_one_delete_per_deleted_tag(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    seed(registry)
    sent = run(registry, tmp_path, "--delete-tag", "pr-.*", "--keep-newer-than", "0s")
    assert not [r for r in sent if "/blobs/" in r.path]  # no rule needs a time
    assert not [r for r in sent if r.method == "HEAD"]
    assert len(sent) / HALF <= 3.0, sorted((r.method, r.path) for r in sent)


def test_by_age_costs_at_most_five_requests_per_deleted_tag(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    seed(registry)
    sent = run(registry, tmp_path, "--delete-older-than", "30d")
    manifests = [r for r in sent if r.method == "GET" and "/manifests/" in r.path]
    assert len(manifests) == 2 * HALF  # one per tag: the walk and the time read reuse it
    assert not [r for r in sent if r.method == "HEAD"]
    assert len(sent) / HALF <= 5.0, sorted((r.method, r.path) for r in sent)
