"""Every native-API fake answers through a vendor schema, and the check catches a drift."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import _schemas
from tests.fakes._router import Call
from tests.fakes.acr_api import FakeAcr
from tests.fakes.artifactory_api import FakeArtifactory
from tests.fakes.dockerhub_api import FakeDockerHub, FakeHubRegistry
from tests.fakes.github_api import FakeGitHub
from tests.fakes.gitlab_api import FakeGitLab
from tests.fakes.google_registry import GoogleRegistry
from tests.fakes.harbor_api import FakeHarbor
from tests.fakes.quay_api import FakeQuay
from tests.fakes.selectel_api import FakeSelectel

FAKES: list[Any] = [
    FakeDockerHub(""),
    FakeHubRegistry(""),
    FakeQuay(""),
    FakeSelectel(""),
    FakeHarbor("", serve_registry=True),
    FakeAcr(""),
    FakeArtifactory(""),
    GoogleRegistry(""),
    FakeGitHub(),
    FakeGitLab(),
]


@pytest.mark.parametrize("fake", FAKES, ids=lambda fake: type(fake).__name__)
def test_every_route_is_checked_against_a_cited_schema(fake: Any) -> None:
    for method, pattern, handler in fake.routes:
        name = getattr(handler, "schema", None)
        assert name, f"{type(fake).__name__} {method} {pattern.pattern} has no schema"
        assert _schemas.load(name)["source"]


def test_a_drifted_answer_is_a_violation() -> None:
    """The old Docker Hub fake served a top-level digest the published tag schema lacks."""
    drifted = {"name": "v1", "digest": "sha256:" + "a" * 64, "media_type": "x"}
    headers = {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1"}
    with pytest.raises(AssertionError, match="drifted"):
        _schemas.check("dockerhub/tag_get.json", 200, headers, drifted)
    with pytest.raises(AssertionError, match="not documented"):
        _schemas.check("dockerhub/tag_get.json", 500, headers, {})
    assert len(_schemas.VIOLATIONS) == 2
    _schemas.VIOLATIONS.clear()  # expected here; the autouse check would fail the test


def test_a_checked_handler_raises_on_drift() -> None:
    def wrong(call: Call) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"tags": "not a list"}

    with pytest.raises(AssertionError):
        _schemas.checked(wrong, "quay/tags_list.json")(Call("GET", "/", {}, {}, b""))
    _schemas.VIOLATIONS.clear()
