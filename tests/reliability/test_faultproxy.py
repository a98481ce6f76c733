"""The fault-injecting proxy itself: faithful forwarding and every fault it can inject.

Forwarding is checked with a real client (skopeo pushing and reading an image through the
proxy in front of the real registry: blob uploads whose `Location` must be rewritten, manifest
PUT, HEAD, chunked bodies) and against a small loopback upstream for the framing cases.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support import faultproxy as fp
from tests.support.images import _oci_layout, build_image, list_tags, skopeo
from tests.support.registry import LocalRegistry


class _Upstream(BaseHTTPRequestHandler):
    """Echo server: answers chunked or sized bodies, echoes request bodies, redirects."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/moved"):
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/big")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * 200_000 if self.path.startswith("/big") else b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            raise AssertionError("the proxy must re-frame chunked request bodies")
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"len": len(data), "sha": hash(data)}).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_DELETE = do_PATCH = do_PUT


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(upstream: str) -> Iterator[fp.FaultProxy]:
    with fp.FaultProxy(upstream, lifetime=60) as p:
        yield p


def test_forwards_sized_chunked_and_head(proxy: fp.FaultProxy) -> None:
    assert requests.get(f"{proxy.url}/small", timeout=5).json() == {"ok": True}
    assert len(requests.get(f"{proxy.url}/big", timeout=5).content) == 200_000
    assert requests.get(f"{proxy.url}/chunked", timeout=5).content == b"hello chunked world"
    head = requests.head(f"{proxy.url}/big", timeout=5)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "200000"
    assert proxy.count("GET") == 3
    assert proxy.count("HEAD", "^/big$") == 1
    assert proxy.counts()[("GET", "/small")] == 1


def test_keep_alive_after_head(proxy: fp.FaultProxy) -> None:
    """HEAD, then other methods on the same client (and upstream) connection."""
    with requests.Session() as session:
        for _ in range(3):
            assert session.head(f"{proxy.url}/big", timeout=5).status_code == 200
            assert session.delete(f"{proxy.url}/x", timeout=5).status_code == 201
    assert all(r.status and not r.error for r in proxy.records)


def test_forwards_request_bodies_sized_and_chunked(proxy: fp.FaultProxy) -> None:
    data = b"blob" * 50_000
    sized = requests.put(f"{proxy.url}/upload", data=data, timeout=5).json()
    # A generator body makes requests send Transfer-Encoding: chunked, as Go clients do.
    chunked = requests.put(f"{proxy.url}/upload", data=iter([data[:7], data[7:]]), timeout=5).json()
    assert sized == chunked == {"len": len(data), "sha": hash(data)}


def test_rewrites_location_to_the_proxy(proxy: fp.FaultProxy, upstream: str) -> None:
    answer = requests.get(f"{proxy.url}/moved", allow_redirects=False, timeout=5)
    assert answer.headers["Location"] == f"{proxy.url}/big"


def test_status_burst_then_pass(proxy: fp.FaultProxy) -> None:
    proxy.add(fp.burst(503, 2, path="^/small"), fp.burst(500, 1, method="PUT"))
    codes = [requests.get(f"{proxy.url}/small", timeout=5).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert requests.put(f"{proxy.url}/x", data=b"1", timeout=5).status_code == 500
    assert requests.put(f"{proxy.url}/x", data=b"1", timeout=5).status_code == 201
    assert proxy.injected("status") == 3
    assert proxy.count() == 5


def test_rate_limited_seconds_and_date(proxy: fp.FaultProxy) -> None:
    proxy.add(fp.rate_limited(2), fp.rate_limited(3, as_date=True))
    first = requests.get(f"{proxy.url}/small", timeout=5)
    second = requests.get(f"{proxy.url}/small", timeout=5)
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "2"
    assert second.headers["Retry-After"].endswith(" GMT")
    assert requests.get(f"{proxy.url}/small", timeout=5).status_code == 200


def test_skip_lets_first_matches_pass(proxy: fp.FaultProxy) -> None:
    proxy.add(fp.status(502, skip=2, times=None, path="/small"))
    codes = [requests.get(f"{proxy.url}/small", timeout=5).status_code for _ in range(4)]
    assert codes == [200, 200, 502, 502]


def test_slow_past_client_timeout_still_reaches_upstream(proxy: fp.FaultProxy) -> None:
    proxy.add(fp.slow(1.5, method="DELETE"))
    with pytest.raises(requests.Timeout):
        requests.delete(f"{proxy.url}/thing", timeout=0.3)
    assert proxy.count("DELETE") == 1
    assert proxy.records[0].fault == "slow"
    record = proxy.records[0]
    assert record.done.wait(5), "the proxy never finished the slow DELETE"
    assert record.status == 0  # the answer found the client gone: nothing was sent
    assert "client closed the connection before the answer" in record.error
    assert requests.delete(f"{proxy.url}/thing", timeout=2).status_code == 201


def test_drop_mid_response(proxy: fp.FaultProxy) -> None:
    proxy.add(fp.drop(after_bytes=1000, path="/big"), fp.drop(after_bytes=3, path="/chunked"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{proxy.url}/big", timeout=5)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{proxy.url}/chunked", timeout=5)
    assert len(requests.get(f"{proxy.url}/big", timeout=5).content) == 200_000


def test_reset_before_answer(proxy: fp.FaultProxy) -> None:
    proxy.add(fp.reset(method="GET"))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/small", timeout=5)
    assert requests.get(f"{proxy.url}/small", timeout=5).status_code == 200


def test_redirect_and_authorization_recorded(proxy: fp.FaultProxy) -> None:
    with fp.FaultProxy(proxy.upstream, lifetime=30) as other:
        # requests drops Authorization when a redirect leaves the host: the proxy sees that.
        proxy.add(fp.redirect(f"{other.url}/small"))
        answer = requests.get(f"{proxy.url}/x", auth=("u", "p"), timeout=5)
        assert answer.status_code == 200
        assert proxy.records[0].authorization
        assert not other.records[0].authorization


def test_hook_runs_before_forwarding(proxy: fp.FaultProxy) -> None:
    seen: list[tuple[str, str]] = []
    proxy.add(fp.hook(lambda m, p: seen.append((m, p)), skip=1, method="GET"))
    for _ in range(3):
        requests.get(f"{proxy.url}/small", timeout=5)
    assert seen == [("GET", "/small")]


def test_upstream_down_answers_502() -> None:
    with fp.FaultProxy("http://127.0.0.1:9", lifetime=30) as proxy:
        assert requests.get(f"{proxy.url}/v2/", timeout=5).status_code == 502


def test_stops_by_itself_after_lifetime(upstream: str) -> None:
    proxy = fp.FaultProxy(upstream, lifetime=0.3).start()
    assert requests.get(f"{proxy.url}/small", timeout=5).status_code == 200
    assert proxy.wait_stopped(10)  # by its lifetime timer: nothing called stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/small", timeout=2)


def _proxy_auth(tmp: Path, reg: LocalRegistry, proxy: fp.FaultProxy) -> Path:
    config = {"auths": {proxy.host: {"auth": reg.auth_entry()}}}
    path = tmp / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
def test_real_client_through_proxy(
    auth: str, registry: LocalRegistry, token_registry: LocalRegistry
) -> None:
    """skopeo pushes (blob uploads continue at the rewritten `Location`, manifest PUT) and
    reads back through the proxy, with Basic and with Bearer auth."""
    reg = registry if auth == "htpasswd" else token_registry
    with fp.FaultProxy(reg.url, lifetime=120) as proxy, tempfile.TemporaryDirectory() as tmp:
        authfile = _proxy_auth(Path(tmp), reg, proxy)
        manifest, blobs = build_image("through the proxy")
        layout = Path(tmp) / "layout"
        _oci_layout(layout, manifest, blobs, json.loads(manifest)["mediaType"])
        target = f"docker://{proxy.host}/proxied/app:1"
        skopeo(
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-authfile",
            str(authfile),
            f"oci:{layout}",
            target,
        )
        assert proxy.count("PUT", "/manifests/1$") == 1
        # Two blobs: each upload starts with POST and finishes at the Location the proxy rewrote.
        assert proxy.count("POST", "/blobs/uploads/$") == 2
        assert proxy.count("PUT", "/blobs/uploads/.") == 2
        raw = skopeo("inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile), target)
        assert json.loads(raw.stdout) == json.loads(manifest)
    assert list_tags(reg, "proxied/app") == ["1"]
