"""A fake of the Selectel identity API and Container Registry API for the `selectel` backend.

Follows werf's Selectel driver (pkg/docker_registry/selectel.go, 2022-2024) and the seed's
"Selectel CRaaS" section, since Selectel's CR API reference was not reachable:
- identity `POST /identity/v3/auth/tokens` (Keystone v3 password method; user in domain =
  account; scope project by name+domain or by id) -> 201 with `X-Subject-Token`; 401 otherwise.
  `flaky_vpc_id` makes id-scoped requests fail like the seed's known limitation 1.
- `GET /api/v1/registries?limit&offset` (X-Auth-Token) -> [{id, name}]; `limit` defaults to
  10, as Selectel's API pages say (cited in issue 19), so a client that sends no paging sees
  only the first ten registries of a project (which may hold 100).
- `DELETE /api/v1/repositories/{repo}/{digest}?registryId=` -> 204, 404 when unknown. Which
  form of a nested {repo} Selectel accepts is undocumented: `repo_path` says which one the fake
  takes ("slash" as werf sends it, "encoded" as %2F, or "either"); the other form 404s.
Answers are checked against `tests/fakes/schemas/selectel/` (which say what is cited from
where, and that no machine-readable Selectel spec was available).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.fakes._router import Answer, Call, FakeApi

CR_URL = "https://cr.selcloud.ru"
IDENTITY_URL = "https://identity.fake.test/identity/v3"
IDENTITY_SCHEMA = "selectel/identity_tokens.json"


@dataclass
class FakeSelectel(FakeApi):
    registries: dict[str, str] = field(default_factory=lambda: {"reg-1": "acme"})  # id -> name
    images: set[tuple[str, str, str]] = field(default_factory=set)  # (registry id, repo, digest)
    flaky_vpc_id: bool = False
    tokens: set[str] = field(default_factory=set)
    # Called with (registry name, repo, digest) after a delete (CLI tests mirror it in the
    # real registry that serves the /v2 side).
    on_delete: Callable[[str, str, str], None] | None = None
    repo_path: str = "either"  # "slash" | "encoded" | "either"

    def __post_init__(self) -> None:
        self.route("GET", r"/api/v1/registries", self._registries, "selectel/registries.json")
        self.route(
            "DELETE",
            r"/api/v1/repositories/(?P<repo>.+)/(?P<digest>sha256(:|%3A)[^/]+)",
            self._delete,
            "selectel/reference_delete.json",
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
        limit = int(call.query.get("limit", "10"))
        offset = int(call.query.get("offset", "0"))
        listed = [{"id": key, "name": name} for key, name in self.registries.items()]
        return 200, {}, listed[offset : offset + limit]

    def _path_accepted(self, raw: str) -> bool:
        if self.repo_path == "slash":
            return "%2F" not in raw.upper()
        if self.repo_path == "encoded":
            return "/" not in raw
        return True

    def _delete(self, call: Call) -> Answer:
        if not self._authed(call):
            return 401, {}, {"message": "unauthorized"}
        assert call.match is not None
        if not self._path_accepted(call.match["repo"]):
            return 404, {}, {"message": "not found"}
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
