"""What the native-API backends share: a JSON API client, paging, tag rows and times.

Docker Hub, Quay, Harbor, Azure, Selectel and Artifactory each have a REST API next to the
registry API. The client here reuses the registry transport (`ci_env.registry.transport`: one
pooled session, bounded retries, Retry-After, the global rate limit) and adds what those APIs
do differently: Docker Hub's `X-Retry-After` (a unix time) and `X-RateLimit-*` headers, jitter
on rate-limit waits (Selectel asks for it), and a per-backend "retry this answer" rule (Harbor's
PROJECTPOLICYVIOLATION). Failed answers become `ci_env.errors` types with the backend's own hint.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from ci_env import secrets
from ci_env.errors import AuthError, CiEnvError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries.base import Backend, Image
from ci_env.registry import responses
from ci_env.registry.client import MAX_PAGES
from ci_env.registry.transport import RateLimiter, Transport, backoff_seconds, same_origin

logger = logging.getLogger(__name__)

RetryRule = Callable[[requests.Response], bool]


class ApiTransport(Transport):
    """The registry transport plus the rate-limit dialects of the native APIs."""

    def __init__(
        self,
        host: str,
        options: BackendOptions,
        *,
        jitter: tuple[float, float] = (0.0, 0.0),
        retry_if: RetryRule | None = None,
        default_rate: float | None = None,
    ) -> None:
        limiter = None
        if options.max_requests_per_second is None and default_rate is not None:
            # A backend default (Selectel) applies to this API only, not to every registry.
            limiter = RateLimiter()
            limiter.configure(default_rate)
        super().__init__(host, options, limiter=limiter)
        self.jitter = jitter
        self.retry_if = retry_if
        self._pause_lock = threading.Lock()
        self._not_before = 0.0

    def send(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        self._wait_for_reset()
        response = super().send(method, path, headers=headers, **kwargs)
        self._note_remaining(response)
        return response

    def _retry_delay(self, response: requests.Response, attempt: int) -> float | None:
        delay = super()._retry_delay(response, attempt)
        if response.status_code == 429:
            hub = _unix_time_delay(response.headers.get("X-Retry-After"))
            delay = hub if hub is not None else delay
        if delay is None and self.retry_if is not None and self.retry_if(response):
            delay = max(2.0, backoff_seconds(attempt))
        if delay is not None and response.status_code == 429 and self.jitter[1] > 0:
            delay += random.uniform(*self.jitter)
        return delay

    def _note_remaining(self, response: requests.Response) -> None:
        # Docker Hub announces the end of a budget before refusing: wait for the reset
        # instead of spending the next request on a 429.
        if response.headers.get("X-RateLimit-Remaining", "").strip() != "0":
            return
        delay = _unix_time_delay(response.headers.get("X-RateLimit-Reset"))
        if delay is not None and delay <= self.options.max_retry_seconds:
            with self._pause_lock:
                self._not_before = max(self._not_before, time.monotonic() + delay)

    def _wait_for_reset(self) -> None:
        with self._pause_lock:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            logger.debug("%s: rate-limit budget used up; waiting %.1fs", self.registry, delay)
            self.sleep(delay)


def _unix_time_delay(value: str | None) -> float | None:
    """Seconds until a unix timestamp header value; None when absent or malformed."""
    if not value or not (value.strip().isascii() and value.strip().isdigit()):  # not "²"
        return None
    return max(0.0, float(value.strip()) - time.time())


@dataclass(frozen=True)
class Hints:
    """What to tell the user when the API refuses: wrong credentials, missing permission."""

    auth: str
    denied: str


_DEFAULT_PORTS = {"http": 80, "https": 443}


class ApiClient:
    """A JSON API at `base_url` (scheme included) with an `Authorization` supplier."""

    def __init__(
        self,
        base_url: str,
        options: BackendOptions,
        *,
        service: str,
        hints: Hints,
        authorization: Callable[[], str | None] = lambda: None,
        transport: ApiTransport | None = None,
        renew: Callable[[str], bool] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.hints = hints
        self.authorization = authorization
        # Called with a refused (401) Authorization value; True when a fresh one is ready.
        self.renew = renew
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0]
        self.transport = transport or ApiTransport(host, options)

    def url(self, path: str) -> str:
        """A path under the API, or an absolute URL (a page link) on the API's own origin:
        the Authorization goes with it, so a `next` link to another host is refused."""
        if "://" not in path:
            return self.base_url + path
        if _origin(path) != _origin(self.base_url):
            foreign = urlsplit(path)
            raise RegistryError(
                f"{self.service} pointed to another host for the next page "
                f"({foreign.scheme}://{foreign.netloc}); refused: the credentials would go with it",
                f"check the API URL ({self.base_url}); a proxy may be rewriting links",
            )
        return path

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        ok: tuple[int, ...] = (),
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send, and raise the translated error unless 2xx or in `ok`.

        A 401 to a token the `renew` hook can replace (an expired short-lived token) is sent
        once more with the new token.
        """
        sent = dict(headers or {})
        url = self.url(path)
        # The API's credentials go to its own origin only, not to a next-page Link elsewhere.
        own = "Authorization" not in sent and same_origin(url, self.base_url)
        authorization = self.authorization() if own else None
        if authorization:
            sent["Authorization"] = authorization
        sent.setdefault("Accept", "application/json")
        response = self.transport.send(method, url, headers=sent, **kwargs)
        if response.status_code == 401 and authorization and self.renew is not None:
            if self.renew(authorization):
                sent["Authorization"] = self.authorization() or ""
                response = self.transport.send(method, url, headers=sent, **kwargs)
        if response.ok or response.status_code in ok:
            return response
        raise self.error(response, what)

    def error(self, response: requests.Response, what: str) -> CiEnvError:
        error = responses.to_error(response, what, self.service)
        if isinstance(error, AuthError):
            hint = self.hints.auth if response.status_code == 401 else self.hints.denied
            return AuthError(error.message, hint)
        return error

    def json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = self.call(method, path, what, **kwargs)
        try:
            return responses.loads(response.content)
        except ValueError:
            raise RegistryError(
                f"{self.service} answered {what} with something that is not JSON",
                "check the API URL; a proxy or login page may be in the way",
                status=response.status_code,
            ) from None

    def link_pages(self, path: str, what: str, **kwargs: Any) -> Iterator[Any]:
        """Bodies of every page, following `Link: <...>; rel="next"` (RFC 8288); stops at a
        repeated URL and fails after MAX_PAGES pages (an API that never stops paging)."""
        url: str | None = path
        seen: set[str] = set()
        while url and url not in seen:
            if len(seen) >= MAX_PAGES:
                raise RegistryError(
                    f"{what}: {self.service} was still paging after {MAX_PAGES} pages",
                    "the API or a proxy in front of it keeps sending a next page",
                )
            seen.add(url)
            response = self.call("GET", url, what, **kwargs)
            kwargs.pop("params", None)  # the next link carries its own query
            yield _body(response, self.service, what)
            nxt = response.links.get("next", {}).get("url")
            url = urljoin(response.url, nxt) if nxt else None

    def close(self) -> None:
        self.transport.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    """scheme, host, port (the scheme's default when absent): what a credential is for."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _body(response: requests.Response, service: str, what: str) -> Any:
    try:
        return responses.loads(response.content)
    except ValueError:
        raise RegistryError(
            f"{service} answered {what} with something that is not JSON",
            status=response.status_code,
        ) from None


def scheme_for(host: str, options: BackendOptions) -> str:
    """https, except plain http where the registry layer allows it (loopback, --insecure)."""
    from ci_env.registry.transport import plain_http_allowed

    return "http" if plain_http_allowed(host, options) else "https"


def api_base(kind: str, registry: str, options: BackendOptions) -> str:
    """The native API's origin: the API URL configured for `kind` (tests, proxies), else the
    registry's own host, by the scheme the registry layer allows."""
    return options.api_urls.get(kind) or f"{scheme_for(registry, options)}://{registry}"


def segment(text: str) -> str:
    """One URL path segment: `/` and everything else reserved percent-encoded."""
    return quote(text, safe="")


def latest(*times: datetime | None) -> datetime | None:
    known = [moment for moment in times if moment is not None]
    return max(known) if known else None


def distribution(registry: str, options: BackendOptions) -> Backend:
    """The Docker Registry API backend for the registry side (manifests, digests, referrers)."""
    from ci_env.registries import backend_class

    return backend_class("default")(registry, options)


def native(options: BackendOptions, name: str, *, secret: bool = False) -> str:
    """A NativeOption value ('' when unset); a secret one is registered for redaction."""
    value = (options.native.get(name) or "").strip()
    if secret:
        secrets.register(value)
    return value


@dataclass(frozen=True)
class TagRow:
    """One tag as a native listing returns it."""

    tag: str
    digest: str
    pushed: datetime | None = None
    media_type: str = ""


def group_tags(rows: Iterable[TagRow]) -> list[Image]:
    """Images by digest; an image's time is its newest tag push (the safest for retention)."""
    tags: dict[str, list[str]] = {}
    pushed: dict[str, datetime | None] = {}
    media: dict[str, str] = {}
    for row in rows:
        if not row.digest:
            continue
        tags.setdefault(row.digest, []).append(row.tag)
        pushed[row.digest] = latest(pushed.get(row.digest), row.pushed)
        media[row.digest] = media.get(row.digest) or row.media_type
    return [
        Image(digest, tuple(sorted(names)), pushed=pushed[digest], media_type=media[digest])
        for digest, names in tags.items()
    ]
