"""The Quay backend against a fake of the documented Quay API v1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import responses

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registries.base import first_pattern_match
from ci_env.registries.quay import QuayBackend
from tests.fakes.quay_api import BASE_URL, FakeQuay, tag_dict

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
START = 1_715_000_000


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeQuay(BASE_URL)
        fake.repos["acme/app"] = {f"t{i:03}": (A if i < 150 else B, START + i) for i in range(210)}
        yield fake.install(mock)


def backend(**native: str) -> QuayBackend:
    made = QuayBackend("quay.io", BackendOptions(native=native, api_urls={"quay": BASE_URL}))
    made.api.transport.sleep = lambda seconds: None
    return made


def test_registered_and_detected() -> None:
    assert backend_class("quay") is QuayBackend
    assert first_pattern_match(QuayBackend.host_patterns, "quay.io")
    assert first_pattern_match(QuayBackend.host_patterns, "quay.example.com")


def test_lists_active_tags_over_pages(quay: FakeQuay) -> None:
    images = {image.digest: image for image in backend().list_images("acme/app")}
    assert len(images[A].tags) == 150
    assert len(images[B].tags) == 60
    assert images[B].pushed == datetime.fromtimestamp(START + 209, UTC)
    assert quay.calls("GET") == 3
    assert all(query.get("onlyActiveTags") == "true" for _, _, query in quay.log)


def test_untag_is_recoverable_by_default(quay: FakeQuay) -> None:
    assert (
        backend(**{"quay-token": "quay-rw"}).untag("acme/app", "t001", A) == "Quay API tag delete"
    )
    assert quay.history == [("acme/app", "t001", True)]
    assert "t002" in quay.repos["acme/app"]


def test_skip_recovery_period_only_when_asked(quay: FakeQuay) -> None:
    made = backend(**{"quay-token": "quay-rw", "quay-skip-recovery-period": "true"})
    assert "no recovery" in made.untag("acme/app", "t001", A)
    assert quay.history == [("acme/app", "t001", False)]


def test_read_only_token_is_refused_with_the_permission_named(quay: FakeQuay) -> None:
    with pytest.raises(AuthError) as caught:
        backend(**{"quay-token": "quay-ro"}).untag("acme/app", "t001", A)
    assert "repo:write" in caught.value.hint


def test_missing_token_deletes_nothing(quay: FakeQuay) -> None:
    with pytest.raises(AuthError, match="Quay"):
        backend().untag("acme/app", "t001", A)
    assert quay.calls("DELETE") == 0


def test_moved_and_gone_tags(quay: FakeQuay) -> None:
    made = backend(**{"quay-token": "quay-rw"})
    with pytest.raises(RegistryError, match="moved"):
        made.untag("acme/app", "t001", B)
    with pytest.raises(NotFoundError):
        made.untag("acme/app", "nope", A)
    assert made.resolve("acme/app", "t200") == B
    assert made.resolve("acme/missing", "x") is None


def test_delete_untags_every_tag_of_the_digest(quay: FakeQuay) -> None:
    made = backend(**{"quay-token": "quay-rw"})
    made.list_images("acme/app")
    made.delete("acme/app", B)
    assert {digest for digest, _ in quay.repos["acme/app"].values()} == {A}


def test_server_errors_are_retried(quay: FakeQuay) -> None:
    quay.fail_next("GET", "/tag", (503, {"Retry-After": "0"}, {"error_message": "busy"}))
    assert len(backend().list_images("acme/app")) == 2


def test_tag_with_a_future_expiry_is_listed_and_untagged_with_its_digest(quay: FakeQuay) -> None:
    """Quay reports end_ts for live tags set to expire later; the old client dropped them,
    so deleting their digest's other tags left them (and the image) behind."""
    quay.repos["acme/app"] = {"v1": (A, START), "v2": (A, START + 1), "v3": (B, START + 2)}
    quay.expires[("acme/app", "v2")] = int(quay.now()) + 86_400
    made = backend(**{"quay-token": "quay-rw"})
    assert {image.digest: image.tags for image in made.list_images("acme/app")} == {
        A: ("v1", "v2"),
        B: ("v3",),
    }
    made.delete("acme/app", A)
    assert sorted(quay.repos["acme/app"]) == ["v3"]


def test_history_rows_with_a_past_end_are_not_live_tags(quay: FakeQuay) -> None:
    quay.repos["acme/app"] = {"v1": (A, START), "v2": (B, START + 1)}
    made = backend(**{"quay-token": "quay-rw"})
    made.untag("acme/app", "v2", B)
    # A Quay that ignores onlyActiveTags answers the history (a past end_ts) too.
    rows = [tag_dict("v1", A, START, None)] + [tag_dict(*row) for row in quay.dead["acme/app"]]
    quay.fail_next("GET", "/tag/", (200, {}, {"tags": rows, "page": 1, "has_additional": False}))
    assert [image.digest for image in made.list_images("acme/app")] == [A]
