"""The Harbor backend against a fake of the documented Harbor v2.0 artifacts API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import responses

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registries.base import Operation, OpKind, first_pattern_match
from ci_env.registries.default import DistributionBackend
from ci_env.registries.harbor import HarborBackend
from tests.fakes.harbor_api import BASE_URL, MANIFEST_DIGEST, Artifact, FakeHarbor

REPO = "proj/group/app"  # a nested repository: the `/` must be encoded twice
INDEX = "sha256:" + "1" * 64
CHILD = "sha256:" + "2" * 64


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def harbor() -> Iterator[FakeHarbor]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeHarbor(BASE_URL, serve_registry=True)
        artifacts = {
            digest(n): Artifact(digest(n), f"2024-05-01T10:{n % 60:02}:00.000Z", {f"v{n}": False})
            for n in range(3, 160)
        }
        artifacts[digest(3)].tags["stable"] = True  # immutable
        artifacts[INDEX] = Artifact(INDEX, "2024-05-02T00:00:00Z", {"multi": False}, [CHILD])
        artifacts[CHILD] = Artifact(CHILD, "2024-05-02T00:00:00Z")
        fake.repos[REPO] = artifacts
        yield fake.install(mock)


def backend(**native: str) -> HarborBackend:
    options = BackendOptions(native=native, api_urls={"harbor": BASE_URL})
    made = HarborBackend("harbor.fake.test", options)
    made.api.transport.sleep = lambda seconds: None
    return made


ROBOT = {"harbor-username": "robot$ci", "harbor-password": "robot-secret"}


def test_registered_and_detected() -> None:
    assert backend_class("harbor") is HarborBackend
    assert first_pattern_match(HarborBackend.host_patterns, "harbor.example.org")
    assert first_pattern_match(HarborBackend.host_patterns, "demo.goharbor.io")


def test_lists_top_level_artifacts_with_tags_and_times(harbor: FakeHarbor) -> None:
    harbor.repos[REPO][digest(200)] = Artifact(digest(200), "2024-05-03T00:00:00Z")  # dangling
    images = {image.digest: image for image in backend(**ROBOT).list_images(REPO)}
    assert len(images) == 159
    assert images[digest(3)].tags == ("stable", "v3")
    assert images[digest(200)].tags == ()  # untagged top-level artifacts are listed
    assert CHILD not in images  # Harbor hides an index's children without q=base=*
    assert images[INDEX].pushed == datetime(2024, 5, 2, tzinfo=UTC)
    assert harbor.calls("GET", "/artifacts") == 2
    assert all("group%252Fapp" in path for _, path, _ in harbor.log)


def test_immutability_is_asked_for_so_the_pre_check_fires(harbor: FakeHarbor) -> None:
    """Harbor computes `immutable` only with with_immutable_status=true; the old client never
    asked, so on real Harbor its pre-check never fired."""
    made = backend(**ROBOT)
    made.list_images(REPO)
    assert all(query.get("with_immutable_status") == "true" for _, _, query in harbor.log)
    with pytest.raises(RegistryError, match="immutable"):
        made.untag(REPO, "stable", digest(3))
    assert harbor.calls("DELETE") == 0


def test_accessories_come_from_the_listing(harbor: FakeHarbor) -> None:
    signature = digest(300)
    harbor.repos[REPO][signature] = Artifact(signature, "2024-05-02T00:00:00Z", subject=INDEX)
    made = backend(**ROBOT)
    images = {image.digest for image in made.list_images(REPO)}
    assert signature not in images  # hidden, as on Harbor
    assert made.referrers(REPO, INDEX) == [signature]
    made.delete(REPO, INDEX)
    assert signature not in harbor.repos[REPO]  # cascaded with its subject


def test_untag_removes_only_that_tag(harbor: FakeHarbor) -> None:
    made = backend(**ROBOT)
    assert made.untag(REPO, "v5", digest(5)) == "Harbor API tag delete"
    assert harbor.repos[REPO][digest(5)].tags == {}
    assert made.resolve(REPO, "v6") == digest(6)
    assert made.resolve(REPO, "v5") is None


def test_immutable_tag_is_reported_not_retried(harbor: FakeHarbor) -> None:
    made = backend(**ROBOT)
    with pytest.raises(RegistryError) as caught:
        made.untag(REPO, "stable", digest(3))  # not listed first: the API answers 412
    assert caught.value.status == 412
    assert "immutab" in caught.value.hint
    assert harbor.calls("DELETE") == 1
    made.list_images(REPO)
    with pytest.raises(RegistryError, match="immutable"):
        made.untag(REPO, "stable", digest(3))
    assert harbor.calls("DELETE") == 1  # known from the listing: no request at all


def test_referenced_child_is_kept_with_a_412(harbor: FakeHarbor) -> None:
    made = backend(**ROBOT)
    with pytest.raises(RegistryError) as caught:
        made.delete(REPO, CHILD)
    assert caught.value.status == 412
    assert caught.value.code == "VIOLATE_FOREIGN_KEY_CONSTRAINT"
    assert "references it" in caught.value.hint
    assert "immutab" not in caught.value.hint
    assert made.delete(REPO, INDEX) == "Harbor API artifact delete"
    assert INDEX not in harbor.repos[REPO]
    assert CHILD not in harbor.repos[REPO]
    with pytest.raises(NotFoundError):
        made.delete(REPO, INDEX)


def test_policy_violation_on_a_manifest_pull_is_retried(harbor: FakeHarbor) -> None:
    """Harbor answers PROJECTPOLICYVIOLATION to manifest GET/HEAD (a scan-gated pull), where
    the old client did not retry; it retried the artifact API, which never answers it."""
    harbor.policy_blocks = 1
    made = backend(**ROBOT)
    side = made.distribution
    assert isinstance(side, DistributionBackend)
    waits: list[float] = []
    side.client.transport.sleep = waits.append
    assert made.manifest(REPO, MANIFEST_DIGEST).digest == MANIFEST_DIGEST
    assert len(waits) == 1
    assert waits[0] >= 2.0
    assert harbor.calls("GET", "/v2/proj/group/app/manifests/") == 2


def test_credentials_errors_stop_the_run(harbor: FakeHarbor) -> None:
    with pytest.raises(AuthError) as caught:
        backend().list_images(REPO)
    assert "--repo-harbor-username" in caught.value.hint
    viewer = backend(**{"harbor-username": "viewer", "harbor-password": "viewer-pw"})
    with pytest.raises(AuthError) as denied:
        list(viewer.apply(REPO, [Operation(OpKind.DELETE, digest(9))]))
    assert "robot account" in denied.value.hint


def test_docker_config_login_is_the_fallback(harbor: FakeHarbor, tmp_path: object) -> None:
    import base64
    import json
    from pathlib import Path

    config = Path(str(tmp_path))
    auth = base64.b64encode(b"robot$ci:robot-secret").decode()
    (config / "config.json").write_text(json.dumps({"auths": {"harbor.fake.test": {"auth": auth}}}))
    options = BackendOptions(docker_config=str(config), api_urls={"harbor": BASE_URL})
    assert len(HarborBackend("harbor.fake.test", options).list_images(REPO)) == 158
