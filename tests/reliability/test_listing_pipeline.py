"""Tags are resolved as their listing page arrives (issue 15), through the CLI, on the real
registry. distribution 2.8 answers `tags/list` in one page, so a loopback front pages it the
way the distribution spec's "Listing Tags" describes (`n`, `last`, `Link: <...>; rel="next"`)
with at most 100 tags a page, as registries that cap `n` do; every other request goes to the
real registry. A proxy adds a round trip to each request, so the second page is still on its
way when the first page's manifests are asked for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.fakes._front import Front
from tests.fakes._router import Answer, Call, FakeApi
from tests.support import images
from tests.support.cleanup_cli import cli_env
from tests.support.faultproxy import FaultProxy
from tests.support.harness import run_cli
from tests.support.registry import LocalRegistry

REPO = "paged/app"
CAP = 100
pytestmark = pytest.mark.slow


class PagedTags(FakeApi):
    def __init__(self, registry: LocalRegistry) -> None:
        super().__init__("http://front.invalid")
        self.registry = registry
        self.route("GET", r"/v2/(?P<repo>.+)/tags/list", self._list)

    def _list(self, call: Call) -> Answer:
        assert call.match is not None
        repo = call.match["repo"]
        n = min(int(call.query.get("n", CAP)), CAP)
        names = [t for t in images.list_tags(self.registry, repo) if t > call.query.get("last", "")]
        headers = {}
        if len(names) > n:
            query = urlencode({"n": n, "last": names[n - 1]})
            headers["Link"] = f'</v2/{repo}/tags/list?{query}>; rel="next"'
        return 200, headers, {"name": repo, "tags": names[:n]}


def test_the_first_pages_tags_are_resolved_while_the_second_page_is_listed(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    old = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    tags = [(f"pr-{i}", old) for i in range(10)] + [(f"v-{i:03d}", old) for i in range(240)]
    images.seed_bulk(registry, REPO, tags, workers=16)
    front = Front(PagedTags(registry), registry=registry).start()
    try:
        with FaultProxy(front.url, lifetime=120, delay=0.05) as proxy:
            env = cli_env(tmp_path, registry, proxy.host)
            argv = ["cleanup", "--repo", f"{proxy.host}/{REPO}", "--delete-tag", "pr-.*"]
            done = run_cli([*argv, "--keep-newer-than", "0s"], env, timeout=120)
            records = proxy.records
    finally:
        front.stop()
    assert done.code == 0, done.describe()
    assert images.list_tags(registry, REPO) == [f"v-{i:03d}" for i in range(240)]
    listing = [r for r in records if r.path.endswith("/tags/list") and r.status == 200]
    assert "last=" not in listing[0].query
    assert "last=" in listing[1].query
    gets = [r for r in records if r.method == "GET" and "/manifests/" in r.path]
    assert min(r.arrived for r in gets) < listing[1].finished, "resolving waited for page 2"
