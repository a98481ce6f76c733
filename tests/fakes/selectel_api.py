"""A fake of the Selectel identity API and Container Registry API for the `selectel` backend.

Follows werf's Selectel driver (pkg/docker_registry/selectel.go, 2022-2024) and the seed's
"Selectel CRaaS" section, since Selectel's CR API reference was not reachable:
- identity `POST /identity/v3/auth/tokens` (Keystone v3 password method; user in domain =
  account; scope project by name+domain or by id) -> 201 with `X-Subject-Token`; 401 otherwise.
  `flaky_vpc_id` makes id-scoped requests fail like the seed's known limitation 1.
- `GET /api/v1/registries` (X-Auth-Token) -> [{id, name}].
- `DELETE /api/v1/repositories/{repo}/{digest}?registryId=` -> 204, 404 when unknown.
- Low rate limits: `limit_after` requests, then 429 with `Retry-After: 0` once per excess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.fakes._router import Answer, Call, FakeApi

CR_URL = "https://cr.selcloud.ru"
IDENTITY_URL = "https://identity.fake.test/identity/v3"


@dataclass
class FakeSelectel(FakeApi):
    registries: dict[str, str] = field(default_factory=lambda: {"reg-1": "acme"})  # id -> name
    images: set[tuple[str, str, str]] = field(default_factory=set)  # (registry id, repo, digest)
    flaky_vpc_id: bool = False
    tokens: set[str] = field(default_factory=set)
    # Called with (registry name, repo, digest) after a delete (CLI tests mirror it in the
    # real registry that serves the /v2 side).
    on_delete: Callable[[str, str, str], None] | None = None

    def __post_init__(self) -> None:
        self.route("GET", r"/api/v1/registries", self._registries)
        self.route(
            "DELETE", r"/api/v1/repositories/(?P<repo>[^/]+)/(?P<digest>[^/]+)", self._delete
        )

    def identity(self, call: Call) -> Answer:
        auth = call.json()["auth"]
        user = auth["identity"]["password"]["user"]
        project = auth["scope"]["project"]
        if (user["name"], user["password"], user["domain"]["name"]) != ("svc", "svc-pw", "12345"):
            return (
                401,
                {},
                {
                    "error": {
                        "code": 401,
                        "message": "The request you have made requires authentication.",
                    }
                },
            )
        if "id" in project and self.flaky_vpc_id:
            return 401, {}, {"error": {"code": 401, "message": "project not found"}}
        token = f"keystone-{len(self.tokens)}"
        self.tokens.add(token)
        return 201, {"X-Subject-Token": token}, {"token": {"expires_at": "2099-01-01T00:00:00Z"}}

    def _authed(self, call: Call) -> bool:
        return call.headers.get("X-Auth-Token") in self.tokens

    def _registries(self, call: Call) -> Answer:
        if not self._authed(call):
            return 401, {}, {"message": "unauthorized"}
        return 200, {}, [{"id": key, "name": name} for key, name in self.registries.items()]

    def _delete(self, call: Call) -> Answer:
        if not self._authed(call):
            return 401, {}, {"message": "unauthorized"}
        assert call.match is not None
        key = (
            call.query.get("registryId", ""),
            unquote(call.match["repo"]),
            unquote(call.match["digest"]),
        )
        if key not in self.images:
            return 404, {}, {"message": "not found"}
        self.images.discard(key)
        if self.on_delete is not None:
            self.on_delete(self.registries.get(key[0], ""), key[1], key[2])
        return 204, {}, None
