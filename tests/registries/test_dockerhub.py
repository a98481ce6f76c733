"""The Docker Hub backend against a fake of the documented Hub API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses

from ci_env import secrets
from ci_env.errors import AuthError, NotFoundError, RegistryError, UnsupportedError
from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registries.base import Operation, OpKind, first_pattern_match
from ci_env.registries.dockerhub import DockerHubBackend
from tests.fakes.dockerhub_api import BASE_URL, REGISTRY_URL, FakeDockerHub, FakeHubRegistry

T0 = datetime(2024, 5, 1, tzinfo=UTC)
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeDockerHub(BASE_URL)
        fake.repos["acme/app"] = {
            f"v{i}": (A if i % 2 else B, T0 + timedelta(hours=i)) for i in range(1, 251)
        }
        FakeHubRegistry(REGISTRY_URL, hub=fake).install(mock)
        yield fake.install(mock)


def backend(**native: str) -> DockerHubBackend:
    options = BackendOptions(native=native, api_urls={"dockerhub": BASE_URL})
    made = DockerHubBackend("docker.io", options)
    made.api.transport.sleep = lambda seconds: None
    return made


def test_registered_and_detected() -> None:
    assert backend_class("dockerhub") is DockerHubBackend
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert first_pattern_match(DockerHubBackend.host_patterns, host)
    assert not first_pattern_match(DockerHubBackend.host_patterns, "ghcr.io")


def test_lists_every_page_grouped_by_digest(hub: FakeDockerHub) -> None:
    images = {image.digest: image for image in backend().list_images("acme/app")}
    assert set(images) == {A, B}
    assert len(images[A].tags) == 125
    assert len(images[B].tags) == 125
    assert images[B].pushed == T0 + timedelta(hours=250)  # newest push of its tags
    assert hub.calls("GET", "/tags") == 3  # 100 + 100 + 50


def test_a_next_link_to_another_host_is_refused() -> None:
    """The Authorization goes with every page: a `next` on another origin must not get it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeDockerHub(BASE_URL, next_base="https://evil.example:8443")
        fake.repos["acme/app"] = {f"v{i}": (A, T0) for i in range(150)}
        FakeHubRegistry(REGISTRY_URL, hub=fake).install(mock)
        fake.install(mock)
        elsewhere = FakeDockerHub("https://evil.example:8443").install(mock)
        with pytest.raises(RegistryError, match=r"another host .*https://evil\.example:8443"):
            backend().list_images("acme/app")
        assert elsewhere.log == []
        assert fake.calls("GET", "/tags") == 1


def test_untag_with_username_and_password(hub: FakeDockerHub) -> None:
    made = backend(**{"docker-hub-username": "ci", "docker-hub-password": "hub-password"})
    assert made.untag("acme/app", "v1", A) == "Hub API tag delete"
    assert "v1" not in hub.repos["acme/app"]
    assert "v3" in hub.repos["acme/app"]
    assert "hub-password" in secrets.registered()
    assert hub.calls("POST", "/v2/auth/token") == 1


def test_legacy_login_is_the_fallback(hub: FakeDockerHub) -> None:
    # A Hub without the newer endpoint; a canned answer, since the reference documents none.
    hub.fail_next("POST", "/v2/auth/token", (404, {}, {"message": "not found"}))
    made = backend(**{"docker-hub-username": "ci", "docker-hub-password": "hub-password"})
    made.untag("acme/app", "v2", B)
    assert hub.calls("POST", "/v2/users/login") == 1


def test_refused_token_names_the_access_token_scope(hub: FakeDockerHub) -> None:
    hub.tokens["read-write-pat"] = False
    with pytest.raises(AuthError) as caught:
        backend(**{"docker-hub-token": "read-write-pat"}).untag("acme/app", "v1", A)
    assert "403" in caught.value.message
    assert "Read, Write, Delete" in caught.value.hint
    assert "v1" in hub.repos["acme/app"]


def test_no_credentials_stops_before_deleting(hub: FakeDockerHub) -> None:
    made = backend()
    with pytest.raises(AuthError) as caught:
        list(made.apply("acme/app", [Operation(OpKind.UNTAG, A, "v1")]))
    assert "--repo-docker-hub-token" in caught.value.hint
    assert hub.calls("DELETE") == 0


def test_wrong_password_is_an_auth_error(hub: FakeDockerHub) -> None:
    with pytest.raises(AuthError):
        backend(**{"docker-hub-username": "ci", "docker-hub-password": "nope"}).untag(
            "acme/app", "v1", A
        )


def test_moved_tag_is_left_alone(hub: FakeDockerHub) -> None:
    made = backend(**{"docker-hub-token": "t"})
    hub.tokens["t"] = True
    with pytest.raises(RegistryError, match="moved"):
        made.untag("acme/app", "v1", B)
    with pytest.raises(NotFoundError):
        made.untag("acme/app", "no-such-tag", A)
    assert hub.calls("DELETE") == 0


def test_delete_removes_every_tag_then_the_manifest(hub: FakeDockerHub) -> None:
    hub.tokens["t"] = True
    made = backend(**{"docker-hub-token": "t"})
    assert "every tag" in made.delete("acme/app", A)
    assert all(digest == B for digest, _ in hub.repos["acme/app"].values())
    assert A not in hub.untagged["acme/app"]  # the registry API deleted the manifest (202)
    with pytest.raises(NotFoundError):  # already gone
        made.delete("acme/app", "sha256:" + "c" * 64)


def test_untagged_manifest_is_deleted_through_the_registry_api(hub: FakeDockerHub) -> None:
    """Docker's Registry reference documents manifest DELETE on Hub; the old client said no
    such API existed and left untagged manifests behind."""
    c = "sha256:" + "c" * 64
    hub.untagged["acme/app"] = {c}
    made = backend(**{"docker-hub-token": "t"})
    assert made.delete("acme/app", c) == "registry API manifest delete"
    assert hub.untagged["acme/app"] == set()


def test_referenced_manifest_is_kept_and_reported(hub: FakeDockerHub) -> None:
    made = backend()
    made._tags_by_digest[("acme/app", A)] = ()  # listed untagged, but a tag points at it
    with pytest.raises(RegistryError) as caught:
        made.delete("acme/app", A)
    assert caught.value.status == 403
    assert "references it" in caught.value.message


def test_schema_shaped_listing_resolves_digests_through_the_registry() -> None:
    """The published tag schema has no top-level digest: the old client listed zero images."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        hub = FakeDockerHub(BASE_URL)
        hub.repos["acme/app"] = {"v1": (A, T0), "v2": (B, T0), "v3": (A, T0)}
        registry = FakeHubRegistry(REGISTRY_URL, hub=hub).install(mock)
        hub.install(mock)
        images = {image.digest: image.tags for image in backend().list_images("acme/app")}
    assert images == {A: ("v1", "v3"), B: ("v2",)}
    assert registry.calls("HEAD", "/manifests/") == 3


def test_served_top_level_digest_spares_the_registry(hub: FakeDockerHub) -> None:
    page = {"count": 1, "next": None, "previous": None, "results": [{"name": "v1", "digest": A}]}
    hub.fail_next("GET", "/tags", (200, {}, page))  # what Hub serves beyond its schema
    assert [image.digest for image in backend().list_images("acme/app")] == [A]


def test_token_is_renewed_before_its_ten_minutes_run_out(hub: FakeDockerHub) -> None:
    now = [1000.0]
    hub.clock = lambda: now[0]
    made = backend(**{"docker-hub-username": "ci", "docker-hub-password": "hub-password"})
    made.clock = lambda: now[0]
    made.untag("acme/app", "v1", A)
    now[0] += 601  # the Hub reference: "This expires in 10 minutes"
    made.untag("acme/app", "v3", A)
    assert "v3" not in hub.repos["acme/app"]
    assert hub.calls("POST", "/v2/auth/token") == 2


def test_a_refused_token_is_exchanged_again_once(hub: FakeDockerHub) -> None:
    made = backend(**{"docker-hub-username": "ci", "docker-hub-password": "hub-password"})
    made.untag("acme/app", "v1", A)
    hub.tokens.clear()  # revoked, or expired on a clock that slept
    made.untag("acme/app", "v3", A)
    assert hub.calls("POST", "/v2/auth/token") == 2
    assert hub.calls("DELETE", "/tags/") == 3


def test_a_given_token_that_is_refused_is_not_retried(hub: FakeDockerHub) -> None:
    with pytest.raises(AuthError):
        backend(**{"docker-hub-token": "expired"}).untag("acme/app", "v1", A)
    assert hub.calls("DELETE", "/tags/") == 1
    assert hub.calls("POST") == 0


def test_refused_tag_delete_endpoint_is_reported(hub: FakeDockerHub) -> None:
    hub.tag_delete_gone = True
    made = backend(**{"docker-hub-username": "ci", "docker-hub-password": "hub-password"})
    with pytest.raises(UnsupportedError, match="not part of the published Hub API"):
        made.untag("acme/app", "v1", A)
    assert "v1" in hub.repos["acme/app"]


def test_rate_limit_waits_for_x_retry_after(hub: FakeDockerHub) -> None:
    hub.fail_next("GET", "/tags", hub.rate_limited(retry_in=0))
    waits: list[float] = []
    made = backend()
    made.api.transport.sleep = waits.append
    assert len(made.list_images("acme/app")) == 2
    assert len(waits) == 1
    assert waits[0] <= 1.0


def test_remaining_zero_pauses_until_reset(hub: FakeDockerHub) -> None:
    import time

    reset = str(int(time.time()) + 3)
    hub.fail_next(
        "GET",
        "/tags/v1",
        (
            200,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
            {"name": "v1", "digest": A},
        ),
    )
    waits: list[float] = []
    made = backend()
    made.api.transport.sleep = waits.append
    assert made.resolve("acme/app", "v1") == A
    assert made.resolve("acme/app", "v2") == B
    assert len(waits) == 1
    assert 1.0 < waits[0] <= 3.0


def test_unknown_repository_is_not_found(hub: FakeDockerHub) -> None:
    with pytest.raises(NotFoundError):
        backend().list_images("acme/missing")


def test_hub_login_is_the_registry_login_too(hub: FakeDockerHub) -> None:
    from ci_env.registry.auth import Credentials

    made = backend(**{"docker-hub-username": "ci", "docker-hub-password": "hub-password"})
    assert made._registry().client.credentials() == Credentials("ci", "hub-password")


def test_a_registry_login_that_may_not_delete_leaves_the_image_untagged(
    hub: FakeDockerHub,
) -> None:
    hub.tokens["t"] = True
    hub.registry_may_delete = False
    made = backend(**{"docker-hub-token": "t"})
    assert "stays untagged" in made.delete("acme/app", A)
    assert all(digest == B for digest, _ in hub.repos["acme/app"].values())
    hub.untagged["acme/app"].add("sha256:" + "c" * 64)
    with pytest.raises(AuthError):  # nothing was done: the refusal is the answer
        made.delete("acme/app", "sha256:" + "c" * 64)
