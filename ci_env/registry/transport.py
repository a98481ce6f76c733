"""HTTP transport to one registry: pooled session, scheme choice, bounded retries, rate limit.

Retries happen here and only here. 429 and 503 wait for `Retry-After` (seconds or an HTTP
date); other 5xx and connection failures back off exponentially with jitter. Every request is
bounded by `BackendOptions.max_attempts` and `max_retry_seconds`. 401/403 are returned to the
caller untouched (the auth layer refreshes a token once; nothing retries a refusal).

We hand-write the retry loop rather than use urllib3's `Retry` because we need the total-time
bound, a shared rate limiter and Retry-After on 503 for every method, including DELETE.

Bodies are streamed and counted (`read_body`): each request's body must arrive within
`--timeout` of sending it (requests' own timeout bounds each socket read, so a server sending
a byte a second holds it forever) and must not exceed `MAX_BODY_BYTES`.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import random
import socket
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri, select_proxy
from urllib3.connectionpool import ConnectionPool

if TYPE_CHECKING:
    from requests.sessions import _Settings

from ci_env.errors import RegistryError
from ci_env.options import BackendOptions

logger = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_STATUSES = frozenset({408, 500, 502, 504, 522})
_BASE_DELAY = 0.2  # first backoff step, seconds
_MAX_DELAY = 30.0  # one backoff step never waits longer than this
_LIGHT_METHODS = frozenset({"GET", "HEAD", "DELETE"})
# The largest answer read from a registry or API: far above a manifest (distribution caps them
# at 4 MiB) or a page of 1000 tags, far below what would exhaust a CI job's memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
_CHUNK = 256 * 1024


class BodyTooLarge(RegistryError):
    """An answer larger than MAX_BODY_BYTES: reading stopped there (never retried)."""


class BodyTimeout(requests.exceptions.Timeout):
    """The answer did not arrive within the request's time (retried like any timeout)."""


_CURRENT = threading.local()  # the _Watch of the request this thread is sending


class _Watch:
    """Bounds one request's whole time. requests' timeout bounds each socket read, so a
    server sending its status line or headers a byte a second holds a request for ever; at
    the deadline the watch shuts the request's socket down, which ends any read blocked on it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self.done = False
        self._connection: urllib3.connection.HTTPConnection | None = None
        self._lock = threading.Lock()

    def attach(self, connection: urllib3.connection.HTTPConnection) -> None:
        with self._lock:
            self._connection = connection

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            sock = getattr(self._connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def __enter__(self) -> _Watch:
        _CURRENT.watch = self
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.done = True
        _CURRENT.watch = None


class _Watchdog:
    """One daemon thread firing every request's `_Watch` at its deadline (a timer thread per
    request cost about 0.4 ms here, a fifth of a HEAD). Finished watches leave the heap when
    their deadline comes round."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._cond:
            earliest = not self._heap or watch.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ci-env-watchdog")
                self._thread.daemon = True
                self._thread.start()
            if earliest:  # else the thread already wakes up before this deadline
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].fire()
                wait = self._heap[0][0] - now if self._heap else None
                self._cond.wait(wait)


_WATCHDOG = _Watchdog()


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def read_body(response: requests.Response, deadline: float, limit: int = MAX_BODY_BYTES) -> None:
    """Read a streamed response's body into `response.content`, stopping at `deadline`
    (monotonic) or `limit` bytes (decoded). The connection goes back to the pool when done;
    on failure it is closed."""
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := _read1(response):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(
                    f"{response.request.method} {_path(response.url)} answered more than "
                    f"{limit // (1024 * 1024)} MiB; stopped reading",
                    "the registry or a proxy in front of it sends a broken answer; ci-env "
                    f"reads at most {limit // (1024 * 1024)} MiB per answer",
                )
            parts.append(chunk)
            if time.monotonic() > deadline:
                raise BodyTimeout(f"the body took longer than the timeout ({size} bytes read)")
    except BaseException:
        response.close()
        raise
    response._content = b"".join(parts)  # noqa: SLF001 - how requests itself stores a read body
    response._content_consumed = True  # type: ignore[attr-defined]  # noqa: SLF001
    response.raw.release_conn()


def _read1(response: requests.Response) -> bytes:
    """One read of the body, urllib3's errors translated as `Response.iter_content` does."""
    try:
        chunk: bytes = response.raw.read1(_CHUNK, decode_content=True)
    except urllib3.exceptions.ProtocolError as error:
        raise requests.exceptions.ChunkedEncodingError(error) from error
    except urllib3.exceptions.DecodeError as error:
        raise requests.exceptions.ContentDecodingError(error) from error
    except urllib3.exceptions.ReadTimeoutError as error:
        raise requests.exceptions.ConnectionError(error) from error
    except urllib3.exceptions.SSLError as error:
        raise requests.exceptions.SSLError(error) from error
    return chunk


def same_origin(url: str, base: str) -> bool:
    """Whether absolute `url` has the scheme, host and port of `base` (RFC 6454 origins)."""
    theirs, ours = urlsplit(url), urlsplit(base)
    return (theirs.scheme.lower(), _port_of(theirs)) == (ours.scheme.lower(), _port_of(ours)) and (
        (theirs.hostname or "").lower() == (ours.hostname or "").lower()
    )


def _port_of(parts: SplitResult) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number: matches nothing
        return -1


def _path(url: str | None) -> str:
    return urlsplit(url or "").path


class RateLimiter:
    """A global requests-per-second limit shared by every transport (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0
        self.rate: float | None = None

    def configure(self, rate: float | None) -> None:
        with self._lock:
            self.rate = rate if rate and rate > 0 else None

    def wait(self) -> None:
        with self._lock:
            if self.rate is None:
                return
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)


LIMITER = RateLimiter()


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IPs, with or without a port."""
    bare = host_without_port(host).lower()
    if bare == "localhost" or bare.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def host_without_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def plain_http_allowed(host: str, options: BackendOptions) -> bool:
    """Plain http only for loopback or hosts the user listed with --insecure-registry."""
    insecure = {name.lower() for name in options.insecure_registries}
    return (
        is_loopback(host) or host.lower() in insecure or host_without_port(host).lower() in insecure
    )


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse `Retry-After`: delta seconds or an HTTP date. None when absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (1-based)."""
    ceiling = min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Session-wide `auth`: credentials come from the Docker config only. Without it, requests
    would put Basic credentials from ~/.netrc over our Authorization header."""
    return request


class _Session(requests.Session):
    """A Session that reads the proxy and CA-bundle variables once per host, and sends
    body-less requests without the per-call merging of `Session.request`.

    requests re-reads every proxy variable of the environment on each request (about 0.7 ms
    of CPU each here, a third of a HEAD's cost); they do not change during a run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.auth = _no_netrc
        self._settings: dict[tuple[str, str, str], _Settings] = {}
        self._settings_lock = threading.Lock()

    def send_light(
        self, method: str, url: str, headers: Mapping[str, str], timeout: float
    ) -> requests.Response:
        """HEAD/GET/DELETE with no body, prepared by hand: `Session.request` merges cookies,
        hooks, auth and settings on every call, the largest share of a HEAD's client CPU.
        The adapter still sends it, so proxies, TLS settings and adapter test doubles apply."""
        if self.cookies:
            return self.request(method, url, headers=dict(headers), timeout=timeout, stream=True)
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = requote_uri(url)
        prepared.headers = CaseInsensitiveDict({k: str(v) for k, v in self.headers.items()})
        prepared.headers.update(headers)
        if method not in ("GET", "HEAD"):
            prepared.headers["Content-Length"] = "0"  # as requests does for a body-less DELETE
        prepared.body = None
        prepared.hooks = {"response": []}
        settings = self.merge_environment_settings(prepared.url, {}, True, self.verify, self.cert)
        verify = True if settings["verify"] is None else settings["verify"]
        response = self.get_adapter(prepared.url).send(
            prepared,
            stream=True,
            timeout=timeout,
            verify=verify,
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
        if response.is_redirect:
            response = self._follow(response, method, url, headers, timeout, settings)
        if response.cookies:
            self.cookies.update(response.cookies)
        return response

    def _follow(
        self,
        response: requests.Response,
        method: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        settings: _Settings,
    ) -> requests.Response:
        """Follow a redirect as `Session.send` does (credentials dropped on another host);
        its machinery wants a fully prepared request."""
        full = self.prepare_request(requests.Request(method, url, headers=dict(headers)))
        hops = self.resolve_redirects(
            response,
            full,
            stream=True,
            timeout=timeout,
            verify=settings["verify"],  # type: ignore[arg-type]  # a CA path is fine too
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
        history: list[requests.Response] = [response, *hops]
        final = history.pop()
        final.history = history
        return final

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        if proxies:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.netloc, repr((stream, verify, cert)))
        with self._settings_lock:
            known = self._settings.get(key)
        if known is None:
            known = super().merge_environment_settings(url, proxies, stream, verify, cert)
            with self._settings_lock:
                self._settings[key] = known
        return known.copy()


class _Adapter(HTTPAdapter):
    """Keeps the connection pool of each origin and TLS setting: requests rebuilds the pool
    key on every request (a sixth of a HEAD's client CPU here). Proxied requests, and pools
    the pool manager has closed since, take requests' own way."""

    def __init__(self) -> None:
        super().__init__(pool_connections=4, pool_maxsize=32, max_retries=0)
        self._pools: dict[tuple[str, str, str, str], ConnectionPool] = {}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        # Connections a `_Watch` can stop (direct ones; a proxy's pools are requests' own).
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> ConnectionPool:
        if proxies and select_proxy(str(request.url), dict(proxies)):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        parts = urlsplit(str(request.url))
        key = (parts.scheme, parts.netloc, repr(verify), repr(cert))
        pool = self._pools.get(key)
        if pool is None or getattr(pool, "pool", None) is None:  # closed: no connection queue
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pools[key] = pool
        return pool


class Transport:
    """One registry's HTTP transport. Thread-safe; one pooled `requests.Session`."""

    def __init__(
        self, registry: str, options: BackendOptions, *, limiter: RateLimiter | None = None
    ) -> None:
        self.registry = registry
        self.options = options
        self.limiter = LIMITER if limiter is None else limiter
        if options.max_requests_per_second is not None:
            self.limiter.configure(options.max_requests_per_second)
        self.session = _Session()
        adapter = _Adapter()
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = options.user_agent
        self._scheme: str | None = None
        self._scheme_lock = threading.Lock()
        self.sleep = time.sleep  # replaceable in tests

    @property
    def base_url(self) -> str:
        """`https://host` — or `http://host` for an allowed plain-http registry without TLS."""
        with self._scheme_lock:
            if self._scheme is None:
                self._scheme = self._choose_scheme()
        return f"{self._scheme}://{self.registry}"

    def _choose_scheme(self) -> str:
        if not plain_http_allowed(self.registry, self.options):
            return "https"
        # Like docker: try TLS first, fall back to http when the server does not speak it.
        try:
            self.session.get(f"https://{self.registry}/v2/", timeout=min(5.0, self.options.timeout))
        except requests.exceptions.SSLError:
            return "http"
        except requests.exceptions.ConnectionError:
            return "http"
        except requests.exceptions.RequestException:
            return "https"
        return "https"

    def url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    def same_origin(self, path: str) -> bool:
        """True for a path on this registry, or a URL with its scheme, host and port: the only
        place its credentials may go (an https registry's `Link` to plain http is not)."""
        return "://" not in path or same_origin(path, self.base_url)

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries; returns the final response (any status) or raises RegistryError."""
        url = self.url(path)
        deadline = time.monotonic() + self.options.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            self.limiter.wait()
            try:
                response = self._send_once(method, url, headers or {}, kwargs)
            except requests.exceptions.SSLError as error:
                raise RegistryError(
                    f"TLS to {self.registry} failed: {type(error).__name__}",
                    "fix the registry certificate, or for a test registry pass "
                    f"--insecure-registry {self.registry}",
                ) from None
            except requests.exceptions.RequestException as error:
                delay = backoff_seconds(attempt)
                if not self._may_retry(attempt, deadline, delay):
                    raise RegistryError(
                        f"{method} {self._show(url)} failed after {attempt} attempt(s): "
                        f"{type(error).__name__}",
                        f"check that {self.registry} is reachable; retries are bounded by "
                        "--max-attempts and --max-retry-seconds",
                    ) from None
                logger.debug("%s %s: %s; retry in %.2fs", method, url, type(error).__name__, delay)
                self.sleep(delay)
                continue
            delay_or_none = self._retry_delay(response, attempt)
            if delay_or_none is None:
                return response
            if not self._may_retry(attempt, deadline, delay_or_none):
                return response
            logger.debug(
                "%s %s: %s; retry in %.2fs", method, url, response.status_code, delay_or_none
            )
            response.close()
            self.sleep(delay_or_none)

    def _send_once(
        self, method: str, url: str, headers: Mapping[str, str], kwargs: dict[str, Any]
    ) -> requests.Response:
        timeout = self.options.timeout
        deadline = time.monotonic() + timeout
        with _Watch(timeout) as watch:
            try:
                if not kwargs and method in _LIGHT_METHODS:
                    response = self.session.send_light(method, url, headers, timeout)
                else:
                    response = self.session.request(
                        method, url, headers=dict(headers), timeout=timeout, stream=True, **kwargs
                    )
                read_body(response, deadline)
            except requests.exceptions.RequestException as error:
                if watch.fired:
                    raise BodyTimeout(f"no complete answer within {timeout:g} s") from error
                raise
        return response

    def _retry_delay(self, response: requests.Response, attempt: int) -> float | None:
        status = response.status_code
        if status in RETRY_AFTER_STATUSES:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            return backoff_seconds(attempt) if after is None else after
        if status in BACKOFF_STATUSES or 500 <= status < 600 and status != 501:
            return backoff_seconds(attempt)
        return None

    def _may_retry(self, attempt: int, deadline: float, delay: float) -> bool:
        return attempt < self.options.max_attempts and time.monotonic() + delay <= deadline

    def _show(self, url: str) -> str:
        return url.split("?", 1)[0]

    def close(self) -> None:
        self.session.close()
