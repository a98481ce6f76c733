"""A loopback HTTP server for API fakes that real clients (urllib3 retries, a CLI subprocess)
must reach over a socket, where `responses` cannot stand in.

Listens on 127.0.0.1 only, serves each request in a thread, and shuts itself down after
`lifetime` seconds even if a test forgets to. Routes are `(method, path regex) -> handler`;
every request is logged; `fail_next` queues canned answers in front of the real handler.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.fakes import _schemas

Answer = tuple[int, dict[str, str], Any]


@dataclass
class Call:
    method: str
    path: str  # still percent-encoded, as the server sees it
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def query_all(self, key: str) -> list[str]:
        """Every value of a repeated query parameter (e.g. `scope`)."""
        return [v for k, v in parse_qsl(self.raw_query) if k == key]


Handler = Callable[[Call], Answer]


@dataclass
class Fault:
    method: str
    path_part: str
    answer: Answer
    times: int = 1


@dataclass
class LoopbackApi:
    lifetime: float = 300.0
    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server context

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # --- set-up ---------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler, schema: str | None = None) -> None:
        """Serve `handler`; with `schema`, each answer must match that vendor schema."""
        self.routes.append(
            (method, re.compile(pattern + r"/?$"), _schemas.checked(handler, schema))
        )

    def fail_next(self, method: str, path_part: str, answer: Answer, times: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(method, path_part, answer, times))

    def calls(self, method: str, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.log if m == method and path_part in p)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LoopbackApi:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- dispatch -------------------------------------------------------------------------

    def dispatch(self, call: Call) -> Answer:
        with self._lock:
            self.log.append((call.method, call.path, call.query))
            for fault in self.faults:
                if fault.method == call.method and fault.path_part in call.path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault.answer
        for method, pattern, handler in self.routes:
            match = pattern.match(call.path)
            if method == call.method and match:
                call.match = match
                return handler(call)
        return 404, {}, {"message": "Not Found"}


def _handler(api: LoopbackApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no delayed-ACK wait between headers and body

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            call = Call(
                self.command, parts.path, query, dict(self.headers.items()), body, parts.query
            )
            status, headers, payload = api.dispatch(call)
            data = b""
            if payload is not None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815

    return Handler
