"""The GitHub Packages REST API for container packages, through PyGithub's requester.

PyGithub has no packages API, so the calls go through `Github.requester.requestJsonAndCheck`
(its auth, connection pool, GitHub Enterprise base URL and `GithubRetry`). What we add:
- `MeteredRetry`: GithubRetry (which retries 403 rate limits only) plus GitHub's documented
  rules for secondary limits, which answer 403 *or 429* ("Rate limits for the REST API"):
  wait `retry-after` seconds if given; else until `x-ratelimit-reset` when
  `x-ratelimit-remaining` is 0; else "at least one minute", doubling on each repeat. A wait
  longer than `max_retry_seconds` is not slept: the limit is reported. It records its sleeps.
- `Throttle`: deletes spaced to stay under ~180 a minute (DELETE costs 5 of the 900 points a
  minute per endpoint), shared by every worker thread of the run.
- Errors translated to `ci_env.errors` with the remedy: 401 bad token, 403 missing scope or
  package permission (the Actions GITHUB_TOKEN needs `packages: write` and a linked package),
  403/429 rate limits that retries could not outlast as a plain RegistryError (not auth).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from github import Auth, Github, GithubException, GithubRetry
from requests.utils import parse_header_links
from urllib3 import HTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.util.retry import Retry

from ci_env import secrets, timeparse
from ci_env.errors import AuthError, CiEnvError, NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registry import responses

TRANSPORT_ATTEMPTS = 3  # connection errors (dropped, reset) before giving up

logger = logging.getLogger(__name__)

DEFAULT_API = "https://api.github.com"
SECONDARY_WAIT = 60.0  # GitHub: without retry-after or a reset, "wait for at least one minute"
PER_PAGE = 100  # the documented maximum for package version listings
TOKEN_HINT = (
    "set CIENV_REPO_GITHUB_TOKEN (or GITHUB_TOKEN) to a token with read:packages and "
    "delete:packages"
)
DENIED_HINT = (
    "the token needs read:packages and delete:packages and admin on the package; the Actions "
    "GITHUB_TOKEN works only when the workflow grants `permissions: packages: write` and the "
    "package is linked to this repository (package settings > Manage Actions access)"
)
RATE_HINT = "GitHub rate limits outlasted the retries: run again later or lower --parallel"


class WaitMeter:
    """Seconds spent waiting on rate limits (retry sleeps and our own spacing); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self.seconds += seconds


class MeteredRetry(GithubRetry):
    def __init__(self, meter: WaitMeter | None = None, **kwargs: Any) -> None:
        self.meter = meter or WaitMeter()
        # GithubRetry adds 403; 429 is the other status GitHub documents for secondary limits.
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        super().__init__(**kwargs)

    def new(self, **kwargs: Any) -> MeteredRetry:
        kwargs["meter"] = self.meter
        retry: MeteredRetry = super().new(**kwargs)
        return retry

    def get_retry_after(self, response: Any) -> float | None:
        after: float | None = super().get_retry_after(response)
        if after is not None:
            return after
        headers = response.headers
        reset = str(headers.get("x-ratelimit-reset") or "")
        exhausted = str(headers.get("x-ratelimit-remaining") or "") == "0"
        if exhausted and reset.isascii() and reset.isdigit():
            return float(min(max(0.0, int(reset) - time.time()) + 1, self.retry_after_max))
        if getattr(response, "status", 0) == 429:
            repeats = sum(1 for item in self.history if item.status in (403, 429))
            return float(self.secondary_rate_wait * 2 ** max(0, repeats - 1))
        return None

    # GithubRetry's own signature, which narrows urllib3's (hence its and our ignore).
    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: HTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and response.status == 429:
            wait = retry.get_retry_after(response)
            limit = self.max_rate_limit_wait
            if wait is not None and limit is not None and wait > limit:
                # Sleeping less than GitHub asks would only spend the next attempt.
                raise GithubException(429, _message(response, url), dict(response.headers))
        return retry

    def sleep(self, response: Any = None) -> None:
        start = time.monotonic()
        super().sleep(response)
        self.meter.add(time.monotonic() - start)


class Throttle:
    """At most `per_minute` calls a minute, evenly spaced, across threads."""

    def __init__(self, per_minute: float, meter: WaitMeter) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.meter = meter
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)
            self.meter.add(start - now)


@dataclass(frozen=True)
class Version:
    """A package version: one manifest digest (`name`) with its tags."""

    id: int
    digest: str
    tags: tuple[str, ...]
    created: datetime | None
    updated: datetime | None


def parse_version(data: dict[str, Any]) -> Version:
    container = (data.get("metadata") or {}).get("container") or {}
    return Version(
        id=int(data["id"]),
        digest=str(data["name"]),
        tags=tuple(sorted(str(t) for t in container.get("tags") or ())),
        created=timeparse.parse_time(data.get("created_at")),
        updated=timeparse.parse_time(data.get("updated_at")),
    )


class PackagesApi:
    """Container packages of one GitHub (or GitHub Enterprise Server) instance."""

    def __init__(self, options: BackendOptions, token: str, deletes_per_minute: float) -> None:
        self.base_url = (options.api_urls.get("github") or DEFAULT_API).rstrip("/")
        self.meter = WaitMeter()
        self.throttle = Throttle(deletes_per_minute, self.meter)
        self._token = token
        secrets.register(token)
        retry = MeteredRetry(
            self.meter,
            total=max(0, options.max_attempts - 1),
            backoff_factor=0.5,
            raise_on_status=False,  # the last answer becomes a GithubException we translate
            retry_after_max=int(options.max_retry_seconds),
            max_rate_limit_wait=options.max_retry_seconds,
            secondary_rate_wait=SECONDARY_WAIT,
        )
        self._github = Github(
            auth=Auth.Token(token) if token else None,
            base_url=self.base_url,
            timeout=int(options.timeout),
            user_agent=options.user_agent,
            per_page=PER_PAGE,
            retry=retry,
            pool_size=16,
            # Our Throttle paces deletes; PyGithub's fixed pauses would cap us at 60/min.
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------

    def request(self, verb: str, url: str, what: str, params: dict[str, Any] | None = None) -> Any:
        """(headers, data) of one call, errors translated."""
        if not self._token:
            raise AuthError(f"no GitHub token for {what}", TOKEN_HINT)
        # PyGithub's GithubRetry covers answers; a connection dropped mid-body is ours to retry
        # (both verbs used here are idempotent: a repeated DELETE answers 404 = already gone).
        for attempt in range(TRANSPORT_ATTEMPTS):
            try:
                return self._github.requester.requestJsonAndCheck(verb, url, parameters=params)
            except GithubException as error:
                raise translate(error, what) from None
            except requests.RequestException as error:
                if attempt + 1 < TRANSPORT_ATTEMPTS:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise RegistryError(
                    f"cannot reach the GitHub API at {self.base_url} for {what}: "
                    f"{type(error).__name__}",
                    "check the network and GITHUB_API_URL",
                ) from None
        raise AssertionError("unreachable")

    def pages(self, url: str, what: str, params: dict[str, Any]) -> Iterator[list[Any]]:
        """Each page's list, following `Link: <...>; rel="next"`."""
        next_url: str | None = url
        query: dict[str, Any] | None = params
        while next_url:
            headers, data = self.request("GET", next_url, what, query)
            yield list(data or [])
            query = None  # the next link carries the query
            link = {k.lower(): v for k, v in (headers or {}).items()}.get("link", "")
            next_url = next(
                (item["url"] for item in parse_header_links(link) if item.get("rel") == "next"),
                None,
            )

    # --- packages ------------------------------------------------------------------------

    def owner_path(self, owner: str) -> str:
        """`/orgs/<owner>` or `/users/<owner>`, from the owner's account type (cached)."""
        with self._lock:
            known = self._owners.get(owner)
        if known is None:
            _, data = self.request("GET", f"/users/{quote(owner)}", f"looking up owner {owner}")
            kind = "orgs" if str(data.get("type")) == "Organization" else "users"
            known = f"/{kind}/{quote(owner)}"
            with self._lock:
                self._owners[owner] = known
        return known

    def package_path(self, owner: str, package: str) -> str:
        # A package name's `/` must reach GitHub encoded as %2F (one path segment).
        return f"{self.owner_path(owner)}/packages/container/{quote(package, safe='')}"

    def versions(self, owner: str, package: str) -> Iterator[Version]:
        url = self.package_path(owner, package) + "/versions"
        what = f"listing versions of {owner}/{package}"
        for page in self.pages(url, what, {"per_page": PER_PAGE, "state": "active"}):
            yield from (parse_version(item) for item in page)

    def packages(self, owner: str) -> list[str]:
        url = self.owner_path(owner) + "/packages"
        what = f"listing container packages of {owner}"
        params = {"package_type": "container", "per_page": PER_PAGE}
        return [str(item["name"]) for page in self.pages(url, what, params) for item in page]

    def delete_version(self, owner: str, package: str, version: int) -> None:
        """DELETE one version (204); NotFoundError when it is already gone."""
        self.throttle.wait()
        url = f"{self.package_path(owner, package)}/versions/{version}"
        self.request("DELETE", url, f"deleting version {version} of {owner}/{package}")

    def close(self) -> None:
        self._github.close()


def _message(response: HTTPResponse, url: str | None) -> Any:
    try:
        return responses.loads(GithubRetry.get_content(response, url or "") or b"{}")
    except ValueError:
        return {"message": "secondary rate limit"}


def translate(error: GithubException, what: str) -> CiEnvError:
    status = int(error.status or 0)
    data = error.data if isinstance(error.data, dict) else {}
    message = secrets.redact(str(data.get("message") or error.data or ""))
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    text = f"GitHub answered {status} to {what}: {message}"
    rate_limited = (
        "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in message.lower()
    )
    if status in (403, 429) and rate_limited:
        return RegistryError(text, RATE_HINT, status=status, code="RATE_LIMITED")
    if status == 401:
        return AuthError(text, TOKEN_HINT)
    if status == 403:
        return AuthError(text, DENIED_HINT)
    if status == 404:
        return NotFoundError(
            text,
            "check the name; a private package the token may not read also answers 404 "
            "(give it read:packages)",
            status=404,
        )
    return RegistryError(text, status=status)
