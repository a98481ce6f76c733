"""A small Docker Registry token server for the Bearer flow, on 127.0.0.1.

Follows the "Token Authentication Specification" of distribution
(docs/spec/auth/token.md and jwt.md): `GET <realm>?service=S&scope=repository:NAME:ACTIONS`
(repeatable `scope`) with HTTP Basic credentials answers `{"token", "access_token",
"expires_in", "issued_at"}`; the JWT is RS256-signed, its header carries the certificate in `x5c`
(distribution 2.8 verifies it against `auth.token.rootcertbundle`), its claims carry `iss`, `sub`,
`aud` (= service), `exp`, `nbf`, `iat`, `jti` and `access` (the granted subset of the scope).
Bad credentials answer 401; no credentials get an anonymous token with no access (as Docker Hub's
token server does). `POST` with `grant_type=password|refresh_token` answers the OAuth2 form
(`access_token`, `refresh_token` when `offline_token=true`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER = "ci-env-test-issuer"
SERVICE = "ci-env-test-registry"
ALL_ACTIONS = ("pull", "push", "delete", "*")


def _make_key_and_cert() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-env test token signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    return key, cert


class TokenServer:
    """Issues registry tokens. `users` maps username -> (password, allowed actions)."""

    def __init__(self, users: dict[str, tuple[str, tuple[str, ...]]], port: int) -> None:
        self.users = users
        self.port = port
        self.key, self.cert = _make_key_and_cert()
        self.requests: Counter[str] = Counter()
        self.refresh_tokens: dict[str, str] = {}
        self.expires_in = 300
        self._server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def write_cert(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def grant(self, user: str | None, scopes: list[str]) -> list[dict[str, object]]:
        allowed = self.users[user][1] if user else ()
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            granted = [a for a in actions if a in allowed or "*" in allowed]
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        return access

    def issue(self, user: str | None, scopes: list[str]) -> str:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": self.grant(user, scopes),
        }
        x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [x5c]})

    def check_basic(self, header: str | None) -> str | None | bool:
        """The user for valid Basic credentials, None for none, False for wrong ones."""
        if not header:
            return None
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        entry = self.users.get(user)
        return user if entry and entry[0] == password else False

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler(owner: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # no delayed-ACK wait between headers and body

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            owner.requests["GET"] += 1
            query = parse_qs(urlparse(self.path).query)
            user = owner.check_basic(self.headers.get("Authorization"))
            if user is False:
                self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad creds"}]})
                return
            token = owner.issue(user or None, query.get("scope", []))
            self._answer(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": owner.expires_in,
                    "issued_at": dt.datetime.now(dt.UTC).isoformat(),
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            owner.requests["POST"] += 1
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            user: str | None = None
            if form.get("grant_type") == "refresh_token":
                user = owner.refresh_tokens.get(form.get("refresh_token", ""))
            elif form.get("grant_type") == "password":
                entry = owner.users.get(form.get("username", ""))
                if entry and entry[0] == form.get("password"):
                    user = form["username"]
            if not user:
                self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "denied"}]})
                return
            body: dict[str, object] = {
                "access_token": owner.issue(user, form.get("scope", "").split()),
                "expires_in": owner.expires_in,
            }
            if form.get("offline_token") == "true":
                refresh = uuid.uuid4().hex
                owner.refresh_tokens[refresh] = user
                body["refresh_token"] = refresh
            self._answer(200, body)

    return Handler
