"""A tiny router over `responses` for the native-API fakes: routes, a request log, faults.

A fake subclasses `FakeApi`, registers `(method, path regex) -> handler` and keeps its state in
plain dicts. Every request is logged as (method, path, query) so tests can count calls;
`fail_next(...)` queues canned answers (429, 5xx) in front of the real handler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses
from requests import PreparedRequest

from tests.fakes import _schemas

Answer = tuple[int, dict[str, str], Any]
Handler = Callable[["Call"], Answer]


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        text = self.body.decode() if isinstance(self.body, bytes) else str(self.body or "")
        return {key: values[0] for key, values in parse_qs(text).items()}


@dataclass
class FakeApi:
    base_url: str
    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: list[tuple[str, str, Answer]] = field(default_factory=list)

    def route(self, method: str, pattern: str, handler: Handler, schema: str | None = None) -> None:
        """Serve `handler`; with `schema`, each answer must match that vendor schema."""
        self.routes.append(
            (method, re.compile(pattern + r"/?$"), _schemas.checked(handler, schema))
        )

    def fail_next(self, method: str, path_part: str, answer: Answer) -> None:
        """The next `method` request whose path contains `path_part` gets `answer`."""
        self.faults.append((method, path_part, answer))

    def install(self, mock: responses.RequestsMock) -> FakeApi:
        host = re.escape(self.base_url.rstrip("/"))
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
            mock.add_callback(method, re.compile(host + r"(/.*)?$"), callback=self._dispatch)
        return self

    def calls(self, method: str, path_part: str = "") -> int:
        return sum(1 for m, p, _ in self.log if m == method and path_part in p)

    def _dispatch(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url or "")
        raw_path = parts.path  # still percent-encoded, as the server sees it
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        method = request.method or "GET"
        self.log.append((method, raw_path, query))
        for index, (fault_method, part, answer) in enumerate(self.faults):
            if fault_method == method and part in raw_path:
                del self.faults[index]
                return _render(answer)
        body = request.body or b""
        call = Call(
            method,
            raw_path,
            query,
            dict(request.headers),
            body.encode() if isinstance(body, str) else body,
        )
        for route_method, pattern, handler in self.routes:
            match = pattern.match(raw_path)
            if route_method == method and match:
                call.match = match
                status, headers, body = handler(call)
                # HEAD answers carry no body (urllib3 rejects one).
                return _render((status, headers, None if method == "HEAD" else body))
        return _render((404, {}, {"message": f"fake: no route for {method} {raw_path}"}))


def _render(answer: Answer) -> tuple[int, dict[str, str], str]:
    status, headers, body = answer
    if body is None:
        return status, headers, ""
    if isinstance(body, str):
        return status, headers, body
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body)


def bearer(call: Call) -> str | None:
    value = call.headers.get("Authorization", "")
    return value.split(" ", 1)[1] if value.startswith("Bearer ") else None
