"""A loopback HTTP server playing a hostile registry or token service.

Each test gives it one `respond(request) -> Answer` function; the server records every request
(method, path, headers) so a test can check what ci-env sent where, e.g. that no
`Authorization` reached a host the registry merely named in a `Link` or `Location`:

    with Hostile(lambda r: Answer(200, body=b'{"tags": []}')) as evil:
        ... run ci-env against evil.host ...
        assert not evil.saw_header("Authorization")

An `Answer` may stream its body in pieces with a pause between them (a trickling server) or
give a body too large to hold (`repeat`: the body sent that many times). The server listens on
127.0.0.1 on a free port, serves each connection in a daemon thread, answers at most
`max_requests` requests and stops by itself after `lifetime` seconds. `http.server` rather than
a framework: a hostile server must send exactly the bytes and timing the test chooses.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    pieces: Iterable[bytes] | None = None  # streamed instead of `body`, `pause` s apart
    pause: float = 0.0
    repeat: int = 1  # send `body` this many times (a huge answer without holding it)
    length: bool = True  # send Content-Length (else the body ends with the connection)
    raw: bool = False  # `pieces` are the whole answer, status line and headers included


Respond = Callable[[Request], Answer]


class Hostile:
    def __init__(
        self,
        respond: Respond,
        *,
        lifetime: float = 60,
        max_requests: int = 5000,
        tls: tuple[Path, Path] | None = None,  # (certificate, key): serve https
        name: str = "127.0.0.1",  # the host name clients use (it must resolve to 127.0.0.1)
    ):
        self.respond = respond
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._max = max_requests
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.host = f"{name}:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                request = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                )
                with owner._lock:
                    owner.requests.append(request)
                    over = len(owner.requests) > owner._max
                answer = Answer(503) if over else owner.respond(request)
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                if answer.raw:
                    self.close_connection = True
                    self._stream(answer)
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.pieces is None and answer.length:
                    self.send_header("Content-Length", str(len(answer.body) * answer.repeat))
                if answer.pieces is not None or not answer.length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if answer.pieces is not None:
                    self._stream(answer)
                    return
                try:
                    for _ in range(answer.repeat):
                        self.wfile.write(answer.body)
                except OSError:
                    self.close_connection = True  # the client gave up: what we test for

            def _stream(self, answer: Answer) -> None:
                try:
                    for piece in answer.pieces or ():
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(answer.pause)
                except OSError:
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler

    def __enter__(self) -> Hostile:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def count(self, method: str = "", path: str = "") -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if (not method or r.method == method) and path in r.path
            )

    def saw_header(self, name: str) -> list[Request]:
        """Requests that carried header `name` (empty: none did)."""
        with self._lock:
            return [r for r in self.requests if r.header(name)]


def basic_challenge(request: Request) -> Answer | None:
    """401 with a Basic challenge unless the request carries Authorization."""
    if request.header("Authorization"):
        return None
    return Answer(401, {"WWW-Authenticate": 'Basic realm="hostile"'}, b"{}")
