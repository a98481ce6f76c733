"""A loopback HTTP proxy that injects faults between a client and a real upstream.

Put it in front of the local `docker-registry` (or a native API fake served on 127.0.0.1) and
give the client `proxy.host` / `proxy.url` instead of the upstream's. Every request is forwarded
unchanged (bodies streamed both ways, `Location`/`Link`/realm URLs that name the upstream are
rewritten to the proxy) unless a scheduled `Fault` matches it first:

    with FaultProxy(registry.url) as proxy:
        proxy.add(rate_limited(retry_after=1, times=2, method="DELETE"))
        proxy.add(burst(503, 3, path="/manifests/"))
        proxy.add(drop(after_bytes=10, path="/tags/list"))
        ... run the client against proxy.host ...
        assert proxy.count("DELETE", "/manifests/") == ...

Faults: a status answer (429 with `Retry-After` in seconds or as an HTTP date, 500/502/503
bursts: N times then pass), a slow answer (sleep past the client's timeout, optionally after the
upstream already did the work — the realistic "did my DELETE happen?" case), a connection dropped
mid-response (status, headers and part of the body, then close), a reset before any answer, a
redirect to another URL, and a hook (a callable run before forwarding, e.g. to stop the registry
on the Nth DELETE). Faults match by method and path regex, may skip the first K matches, and are
used up after `times` (None = forever). `override_headers` forwards but replaces some answer
headers (a lying registry or caching proxy).

`delay` adds that many seconds to every request before it is forwarded or faulted: a network
round trip between client and registry (for benchmarks). Each client connection sleeps in its
own thread, so a client with 8 keep-alive connections still has 8 requests in flight; `peak`
says how many were in flight at once. `also_rewrite` maps further upstream URLs (a token
server's realm) to the proxies in front of them, so a token flow crosses the "network" too.

The proxy listens on 127.0.0.1 on a free port, serves each client connection in a daemon thread,
and stops by itself after `lifetime` seconds even if a test forgets to stop it. It uses
`http.server`/`http.client` rather than `requests` because a proxy must pass bytes through
untouched: no redirect following, no decompression, no re-encoding of chunked bodies.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

# Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded; the proxy frames bodies itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
_CHUNK = 64 * 1024


@dataclass
class Fault:
    """One scheduled fault. Build them with the helpers below rather than directly."""

    kind: str  # "status" | "slow" | "drop" | "reset" | "redirect" | "hook" | "headers"
    method: str | None = None  # None = any method
    path: str | None = None  # regex searched in the request path (query excluded)
    times: int | None = 1  # matching requests that get the fault; None = every one
    skip: int = 0  # let this many matching requests pass first
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # "slow": seconds to sleep before answering
    forward: bool = True  # "slow": let the upstream do the work before the delay
    after_bytes: int = 0  # "drop": body bytes sent before the connection is closed
    location: str = ""  # "redirect"
    hook: Callable[[str, str], None] | None = None  # "hook": called with (method, path)
    seen: int = 0  # matching requests so far
    fired: int = 0  # faults injected so far

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


def _fault(
    kind: str, method: str | None, path: str | None, times: int | None, skip: int, **how: Any
) -> Fault:
    return Fault(kind, method=method, path=path, times=times, skip=skip, **how)


def status(
    code: int,
    *,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Fault:
    """Answer `code` instead of forwarding (the upstream never sees the request)."""
    text = body if body is not None else b'{"errors":[{"code":"UNAVAILABLE","message":"fault"}]}'
    extra = {"Content-Type": "application/json", **(headers or {})}
    return _fault("status", method, path, times, skip, status=code, headers=extra, body=text)


def burst(
    code: int, n: int, *, method: str | None = None, path: str | None = None, skip: int = 0
) -> Fault:
    """`code` (500/502/503) for the next `n` matching requests, then pass."""
    return status(code, times=n, method=method, path=path, skip=skip)


def retry_after_date(seconds: float) -> str:
    """`Retry-After` as an HTTP date `seconds` from now (RFC 9110 10.2.3)."""
    return format_datetime(datetime.fromtimestamp(time.time() + seconds, UTC), usegmt=True)


def rate_limited(
    retry_after: float | str = 1,
    *,
    as_date: bool = False,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """429 Too Many Requests with `Retry-After` in seconds (or an HTTP date with `as_date`)."""
    if isinstance(retry_after, str):
        value = retry_after
    elif as_date:
        value = retry_after_date(retry_after)
    else:
        value = str(int(retry_after))
    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limited"}]}'
    return status(
        429,
        times=times,
        method=method,
        path=path,
        skip=skip,
        headers={"Retry-After": value},
        body=body,
    )


def slow(
    seconds: float,
    *,
    forward: bool = True,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """Answer only after `seconds`. With `forward` the upstream acts first (a DELETE happens
    even though the client gave up waiting); without, the request never reaches it."""
    return _fault("slow", method, path, times, skip, delay=seconds, forward=forward)


def drop(
    after_bytes: int = 0,
    *,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """Forward, send the status line, headers and `after_bytes` of the body, then close."""
    return _fault("drop", method, path, times, skip, after_bytes=after_bytes)


def reset(
    *,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """Close the connection without any answer (the upstream never sees the request)."""
    return _fault("reset", method, path, times, skip)


def redirect(
    location: str,
    *,
    code: int = 307,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """Answer a redirect to `location` (e.g. another host, to check credentials are dropped);
    `{path}` in it is replaced by the request's path and query."""
    return _fault("redirect", method, path, times, skip, status=code, location=location)


def hook(
    func: Callable[[str, str], None],
    *,
    times: int | None = 1,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """Call `func(method, path)` before forwarding (e.g. stop the registry mid-run)."""
    return _fault("hook", method, path, times, skip, hook=func)


def override_headers(
    headers: dict[str, str],
    *,
    times: int | None = None,
    method: str | None = None,
    path: str | None = None,
    skip: int = 0,
) -> Fault:
    """Forward, but answer with `headers` replacing the upstream's (a lying registry or caching
    proxy: a wrong `Docker-Content-Digest`, a generic `Content-Type`)."""
    return _fault("headers", method, path, times, skip, headers=dict(headers))


@dataclass
class Record:
    """One request the proxy saw."""

    method: str
    path: str
    query: str
    authorization: bool  # whether the request carried an Authorization header
    headers: tuple[tuple[str, str], ...]
    status: int = 0  # what the client was sent; 0 until answered, or reset/dropped
    fault: str = ""  # the fault injected, "" when forwarded untouched
    error: str = ""  # why the proxy could not finish the exchange (client or upstream gone)
    arrived: float = field(default_factory=time.monotonic, compare=False)
    finished: float = field(default=0.0, compare=False)  # time.monotonic() once done
    # Set once the proxy is done with the request (answered, faulted or failed): wait on it
    # rather than sleeping to read the final `status`/`error`.
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


class FaultProxy:
    """The proxy. Thread-safe; use as a context manager or call `start()`/`stop()`."""

    def __init__(
        self,
        upstream: str,
        *,
        lifetime: float = 600.0,
        upstream_timeout: float = 60.0,
        verify_upstream: bool = False,
        delay: float = 0.0,
        also_rewrite: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        if parts.hostname is None:
            raise ValueError(f"upstream {upstream!r} has no host")
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._upstream_parts = parts
        self._upstream_timeout = upstream_timeout
        self._verify = verify_upstream
        self._lifetime = lifetime
        self.delay = delay
        self._also_rewrite = dict(also_rewrite or {})
        self._in_flight = 0
        self.peak = 0  # most requests in flight at once since the last reset_counts()
        self.connections = 0  # client connections accepted since the last reset_counts()
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._records: list[Record] = []
        self._stopping = threading.Event()
        self._stopped = threading.Event()  # set once the port is closed
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        server = _Server(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self._lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        self._stopped.set()

    def wait_stopped(self, timeout: float) -> bool:
        """Whether the proxy stopped (its port closed) within `timeout` seconds."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the registry host a client should use."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- schedule --------------------------------------------------------------------------------

    def add(self, *faults: Fault) -> FaultProxy:
        with self._lock:
            self._faults.extend(faults)
        return self

    def clear(self) -> None:
        """Remove every scheduled fault (counters and records stay)."""
        with self._lock:
            self._faults.clear()

    def reset_counts(self) -> None:
        with self._lock:
            self._records.clear()
            self.peak = self._in_flight
            self.connections = 0

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.fired += 1
                return fault
        return None

    def _record(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # -- counters --------------------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def counts(self) -> Counter[tuple[str, str]]:
        """Requests per (method, path)."""
        return Counter((r.method, r.path) for r in self.records)

    def methods(self) -> Counter[str]:
        """Requests per method."""
        return Counter(r.method for r in self.records)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen whose method equals `method` and path matches regex `path`."""
        return sum(1 for r in self._select(method, path))

    def injected(self, kind: str | None = None) -> int:
        """Faults injected so far (of `kind`, or all)."""
        return sum(1 for r in self.records if r.fault and (kind is None or r.fault == kind))

    def _select(self, method: str | None, path: str | None) -> Iterator[Record]:
        for r in self.records:
            if method is not None and r.method != method.upper():
                continue
            if path is not None and re.search(path, r.path) is None:
                continue
            yield r

    # -- rewriting -------------------------------------------------------------------------------

    def rewrite(self, value: str) -> str:
        """Upstream absolute URLs in a header value point at the proxy instead."""
        for base in self._upstream_aliases():
            value = value.replace(base, self.url)
        for base, proxy in self._also_rewrite.items():
            value = value.replace(base, proxy)
        return value

    def _upstream_aliases(self) -> Iterable[str]:
        parts = self._upstream_parts
        yield f"{parts.scheme}://{parts.netloc}"
        if parts.hostname in {"127.0.0.1", "localhost"} and parts.port:
            other = "localhost" if parts.hostname == "127.0.0.1" else "127.0.0.1"
            yield f"{parts.scheme}://{other}:{parts.port}"

    def connect_upstream(self) -> http.client.HTTPConnection:
        parts = self._upstream_parts
        assert parts.hostname is not None
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if not self._verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self._upstream_timeout, context=context
            )
        return http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=self._upstream_timeout
        )

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the proxy stops, so a test never waits on a dead proxy."""
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections a 32-worker client opens at once,
    # and each dropped SYN costs that client a 1 s retransmit.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: clients dropping connections is what this proxy is for."""


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive to the client, as registries serve
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers (~40 ms on Linux), a delay no registry adds.
    disable_nagle_algorithm = True
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        """Silent: tests read `proxy.records` instead of stderr."""

    def setup(self) -> None:
        super().setup()
        self.proxy._connected()

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- one request -----------------------------------------------------------------------------

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        # Recorded on arrival, so a client that got its answer always finds its request counted.
        record = Record(
            method=self.command,
            path=path,
            query=query,
            authorization="authorization" in {k.lower() for k in self.headers},
            headers=tuple(self.headers.items()),
        )
        self.proxy._record(record)
        try:
            body = self._read_body()
            if self.proxy.delay:
                self.proxy.sleep(self.proxy.delay)
            fault = self.proxy._pick(self.command, path)
            if fault is not None:
                record.fault = fault.kind
            if fault is not None and fault.kind == "hook" and fault.hook is not None:
                fault.hook(self.command, path)
            record.status = self._respond(fault, body)
        except OSError as error:
            # The client went away (e.g. it timed out on a slow answer): nothing more to send.
            record.error = repr(error)
            self.close_connection = True
        finally:
            record.finished = time.monotonic()
            self.proxy._finished()
            record.done.set()

    def _respond(self, fault: Fault | None, body: bytes | None) -> int:
        if fault is not None and fault.kind in {"status", "redirect", "reset"}:
            return self._answer_fault(fault)
        if fault is not None and fault.kind == "slow" and not fault.forward:
            self.proxy.sleep(fault.delay)
            return self._answer_fault(status(504))
        return self._forward(body, fault)

    def _read_body(self) -> bytes | None:
        """The whole request body (de-chunked). Registry request bodies are manifests and test
        blobs, small enough to hold; holding them lets a body be re-sent with Content-Length."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        return self.rfile.read(int(length))

    def _answer_fault(self, fault: Fault) -> int:
        if fault.kind == "reset":
            self._close_now()
            return 0
        self.send_response(fault.status)
        headers = dict(fault.headers)
        if fault.kind == "redirect":
            # `{path}` stands for the request's own path and query (same path, another host).
            headers["Location"] = fault.location.replace("{path}", self.path)
        body = b"" if self.command == "HEAD" else fault.body
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(fault.body)))
        self.end_headers()
        self.wfile.write(body)
        return fault.status

    def _client_gone(self) -> bool:
        """Whether the client closed its end (a timed-out client): checked before a late answer,
        since the first write to a closed peer may still succeed and hide that it was lost."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _close_now(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- forwarding ------------------------------------------------------------------------------

    def _upstream_conn(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            self._upstream = self.proxy.connect_upstream()
        return self._upstream

    def _request_upstream(self, body: bytes | None) -> http.client.HTTPResponse:
        # A list, not a dict: Go clients send several `Accept` lines and all must arrive.
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() not in {"host", "content-length"}]
        headers.append(("Host", self.proxy._upstream_parts.netloc))
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        # One retry on a stale keep-alive connection to the upstream: that fault is ours, not
        # one we were asked to inject.
        for attempt in (1, 2):
            conn = self._upstream_conn()
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders(body)
                return conn.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected, BrokenPipeError):
                conn.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _forward(self, body: bytes | None, fault: Fault | None) -> int:
        try:
            response = self._request_upstream(body)
        except (OSError, http.client.HTTPException):
            # The upstream is down (e.g. the registry was stopped): answer as a gateway would.
            self._upstream = None
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 502
        if fault is not None and fault.kind == "slow":
            self.proxy.sleep(fault.delay)
            if self._client_gone():
                response.close()
                raise ConnectionAbortedError("client closed the connection before the answer")
        # Only the status line: Date and Server come from the upstream, not twice.
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        replaced = fault.headers if fault is not None and fault.kind == "headers" else {}
        lowered = {name.lower(): value for name, value in replaced.items()}
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower == "content-length":
                continue
            value = lowered.get(lower, value)
            if lower in {"location", "link", "www-authenticate", "content-location"}:
                value = self.proxy.rewrite(value)
            self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        chunked = length is None and not no_body
        if length is not None:
            self.send_header("Content-Length", length)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif no_body and self.command != "HEAD":
            self.send_header("Content-Length", "0")
        if response.getheader("Connection", "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        dropping = fault is not None and fault.kind == "drop"
        budget = fault.after_bytes if dropping and fault is not None else -1
        try:
            self._stream(response, chunked, budget)
        finally:
            # Closed even when fully read: a HEAD answer otherwise stays "open" and the next
            # request on this upstream connection fails with ResponseNotReady.
            response.close()
        if dropping:
            self._upstream = None
            self._close_now()
            return 0
        if response.will_close:
            self._upstream = None
        return response.status

    def _stream(self, response: http.client.HTTPResponse, chunked: bool, budget: int) -> None:
        """Copy the body; with `budget` >= 0 stop after that many bytes (the drop fault)."""
        while True:
            size = _CHUNK if budget < 0 else min(_CHUNK, budget)
            data = response.read1(size) if size else b""
            if not data:
                break
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            if budget >= 0:
                budget -= len(data)
                if budget <= 0:
                    return
        if budget >= 0:
            return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
