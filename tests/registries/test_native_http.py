"""The native JSON API client shared by Harbor, Quay, Docker Hub, ...: its credentials stay with
its origin, and its Link paging ends (issue 16, items 1 and 10), against loopback servers."""

from __future__ import annotations

import itertools

import pytest

from ci_env.errors import RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import _native_http
from ci_env.registries._native_http import ApiClient, Hints
from tests.support.hostile import Answer, Hostile, Request

HINTS = Hints(auth="log in", denied="grant it")


def _client(url: str) -> ApiClient:
    return ApiClient(
        url, BackendOptions(), service="api", hints=HINTS, authorization=lambda: "Bearer api-tok"
    )


def test_a_next_page_on_another_host_is_refused_and_never_asked() -> None:
    # Nothing goes to a host the user never named, with or without the credentials.
    with Hostile(lambda r: Answer(200, body=b"[2]")) as other:
        link = f'<{other.url}/api/items?page=2>; rel="next"'
        with Hostile(lambda r: Answer(200, {"Link": link}, b"[1]")) as api:
            with pytest.raises(RegistryError, match="another host for the next page"):
                list(_client(api.url).link_pages("/api/items", "listing items"))
            assert api.saw_header("Authorization")
        assert other.count() == 0


def test_paging_without_end_fails_at_max_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native_http, "MAX_PAGES", 10)
    counter = itertools.count()

    def respond(request: Request) -> Answer:
        return Answer(200, {"Link": f'</api/items?page={next(counter)}>; rel="next"'}, b"[]")

    with Hostile(respond) as api:
        with pytest.raises(RegistryError, match="still paging after 10 pages"):
            list(_client(api.url).link_pages("/api/items", "listing items"))
        assert api.count() == 10
