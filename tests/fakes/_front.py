"""Serve `responses`-style fakes (`tests.fakes._router.FakeApi`) on a loopback socket, optionally
in front of the real local registry, so a CLI subprocess can reach them.

A request a fake has a route (or a queued fault) for goes to that fake; any other `/v2/...`
request is forwarded unchanged to the real `docker-registry` (its `Location` headers rewritten
to point back here), so one host can serve a native API and the registry side together, as
ACR, GCR and Artifactory do. Listens on 127.0.0.1 only and stops itself after `lifetime` s.
(`tests/fakes/_loopback.py` always adds a JSON Content-Type, which would corrupt proxied
manifest answers, hence this separate front.)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import requests
from requests.structures import CaseInsensitiveDict

from tests.fakes._router import FakeApi

if TYPE_CHECKING:
    from tests.support.registry import LocalRegistry

_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


class Front:
    def __init__(
        self, *fakes: FakeApi, registry: LocalRegistry | None = None, lifetime: float = 120.0
    ) -> None:
        self.fakes = list(fakes)
        self.registry = registry
        self.upstream = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Front:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._timer.start()
        for fake in self.fakes:
            fake.base_url = self.url  # fakes that build absolute `next` links use it
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self.upstream.close()

    def _fake_for(self, method: str, path: str) -> FakeApi | None:
        for fake in self.fakes:
            if any(m == method and part in path for m, part, _ in fake.faults):
                return fake
            if any(m == method and pattern.match(path) for m, pattern, _ in fake.routes):
                return fake
        return None

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path = target.split("?", 1)[0]
        fake = self._fake_for(method, path)
        if fake is not None:
            request = requests.PreparedRequest()
            request.method, request.url, request.body = method, self.url + target, body
            request.headers = CaseInsensitiveDict(headers)
            status, sent, text = fake._dispatch(request)
            return status, dict(sent), text.encode()
        if self.registry is not None and path.startswith("/v2"):
            return self._forward(method, target, headers, body)
        return 404, {"Content-Type": "application/json"}, b'{"message": "front: no route"}'

    def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.registry is not None
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP | {"host"}}
        sent["Accept-Encoding"] = "identity"
        answer = self.upstream.request(
            method,
            self.registry.url + target,
            headers=sent,
            data=body or None,
            allow_redirects=False,
            timeout=30,
        )
        back = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
        if method == "HEAD" and "Content-Length" in answer.headers:
            back["Content-Length"] = answer.headers["Content-Length"]  # the manifest's size
        if "Location" in back:
            back["Location"] = back["Location"].replace(self.registry.url, self.url)
        return answer.status_code, back, answer.content


def _handler(front: Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no delayed-ACK wait between headers and body

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, data = front.answer(
                self.command, self.path, dict(self.headers.items()), body
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if not any(key.lower() == "content-length" for key in headers):
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815

    return Handler
