"""A fake of the Docker Hub API (hub.docker.com) and of Hub's registry side for `dockerhub`.

Follows the Docker Hub API reference (https://docs.docker.com/reference/api/hub/latest/,
docker/docs `content/reference/api/hub/latest.yaml`); every answer is checked against the
schemas in `tests/fakes/schemas/dockerhub/`, written from it:
- `POST /v2/auth/token` {identifier, secret} -> 200 {access_token}, which "expires in 10
  minutes" (`token_lifetime`, on the fake's `clock`); wrong secret -> 401.
  `POST /v2/users/login` {username, password} -> {token} (deprecated).
- `GET /v2/namespaces/{ns}/repositories/{repo}/tags?page_size&page` -> {count, next,
  previous, results: [tag]} with only the published `tag` fields: no top-level digest, the
  platform images' digests in `images[]`; `next` an absolute URL or null; page_size <= 100.
- `GET .../tags/{tag}` -> one tag, 404 when unknown.
- `DELETE /v2/repositories/{ns}/{repo}/tags/{tag}/` is NOT in the reference (docker/hub-tool
  uses it): 204; 403 for a token without delete rights (werf issue #2132); 401 without a
  valid token; `tag_delete_gone` makes it answer 405, as a withdrawn endpoint would.
- Every answer carries `X-RateLimit-Limit/Remaining/Reset`; a 429 carries `X-Retry-After`
  (unix seconds) — tests queue one with `fail_next`.

`FakeHubRegistry` is the registry side (Docker's Registry API reference for Hub): HEAD/GET
manifests by tag or digest, and `DELETE /v2/{name}/manifests/{digest}` -> 202, 403 while a tag
still points at it. Hub's Bearer token dance (auth.docker.io) is not modelled: it is the
default backend's, tested against the real registry's token server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tests.fakes._router import Answer, Call, FakeApi, bearer

BASE_URL = "https://hub.fake.test"
REGISTRY_URL = "https://registry-1.docker.io"  # `responses` intercepts it: nothing leaves
S = "dockerhub/"


@dataclass
class FakeDockerHub(FakeApi):
    # repository "ns/name" -> tag -> (digest, pushed)
    repos: dict[str, dict[str, tuple[str, datetime]]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=lambda: {"ci": "hub-password"})
    # tokens the API accepts; the value says whether the token may delete
    tokens: dict[str, bool] = field(default_factory=dict)
    tag_delete_gone: bool = False
    token_lifetime: float = 600.0
    clock: Callable[[], float] = time.monotonic
    issued: dict[str, float] = field(default_factory=dict)  # exchanged token -> clock()
    untagged: dict[str, set[str]] = field(default_factory=dict)  # repo -> untagged digests
    registry_may_delete: bool = True  # False: the registry login lacks delete (401)
    next_base: str = ""  # set: `next` links point there (a hostile or misconfigured proxy)

    def __post_init__(self) -> None:
        self.route("POST", r"/v2/auth/token", self._auth_token, S + "auth_token.json")
        self.route("POST", r"/v2/users/login", self._login, S + "users_login.json")
        repo = r"/v2/namespaces/(?P<ns>[^/]+)/repositories/(?P<name>[^/]+)"
        self.route("GET", repo + r"/tags", self._list, S + "tags_list.json")
        self.route("GET", repo + r"/tags/(?P<tag>[^/]+)", self._get, S + "tag_get.json")
        self.route(
            "DELETE",
            r"/v2/repositories/(?P<ns>[^/]+)/(?P<name>[^/]+)/tags/(?P<tag>[^/]+)",
            self._delete,
            S + "tag_delete.json",
        )

    def _issue(self, user: str, can_delete: bool = True) -> str:
        token = f"hub-jwt-{user}-{len(self.tokens)}"
        self.tokens[token] = can_delete
        self.issued[token] = self.clock()
        return token

    def _valid(self, token: str | None) -> bool:
        if token is None or token not in self.tokens:
            return False
        born = self.issued.get(token)
        return born is None or self.clock() - born < self.token_lifetime

    def _auth_token(self, call: Call) -> Answer:
        body = call.json()
        if self.users.get(body.get("identifier")) != body.get("secret"):
            return 401, {}, {"detail": "Incorrect authentication credentials"}
        return 200, {}, {"access_token": self._issue(body["identifier"])}

    def _login(self, call: Call) -> Answer:
        body = call.json()
        if self.users.get(body.get("username")) != body.get("password"):
            return 401, {}, {"detail": "Incorrect authentication credentials"}
        return 200, {}, {"token": self._issue(body["username"])}

    def _headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "180",
            "X-RateLimit-Remaining": "179",
            "X-RateLimit-Reset": str(int(time.time()) + 60),
        }

    def _tags(self, call: Call) -> dict[str, tuple[str, datetime]] | None:
        assert call.match is not None
        return self.repos.get(f"{call.match['ns']}/{call.match['name']}")

    def _item(self, name: str, digest: str, pushed: datetime) -> dict[str, object]:
        stamp = pushed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # The tag points at an index; `images` lists its platform images, not the index.
        platform = "sha256:" + digest.removeprefix("sha256:")[::-1]
        return {
            "id": abs(hash(name)) % 10**6,
            "name": name,
            "images": [
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "digest": platform,
                    "size": 1234,
                    "status": "active",
                    "last_pushed": stamp,
                }
            ],
            "full_size": 1234,
            "v2": True,
            "status": "active",
            "tag_last_pushed": stamp,
            "last_updated": stamp,
        }

    def _list(self, call: Call) -> Answer:
        tags = self._tags(call)
        if tags is None:
            return 404, self._headers(), {"message": "object not found"}
        size = min(int(call.query.get("page_size", "10")), 100)
        page = int(call.query.get("page", "1"))
        names = sorted(tags)
        chunk = names[(page - 1) * size : page * size]
        more = page * size < len(names)
        path = call.path
        base = self.next_base or self.base_url
        nxt = f"{base}{path}?page={page + 1}&page_size={size}" if more else None
        results = [self._item(name, *tags[name]) for name in chunk]
        return (
            200,
            self._headers(),
            {"count": len(names), "next": nxt, "previous": None, "results": results},
        )

    def _get(self, call: Call) -> Answer:
        tags = self._tags(call)
        assert call.match is not None
        tag = call.match["tag"]
        if tags is None or tag not in tags:
            return 404, self._headers(), {"message": "object not found"}
        return 200, self._headers(), self._item(tag, *tags[tag])

    def _delete(self, call: Call) -> Answer:
        if self.tag_delete_gone:
            return 405, self._headers(), {"message": "method not allowed"}
        token = bearer(call)
        if not self._valid(token):
            return 401, self._headers(), {"detail": "authentication required"}
        if not self.tokens[token or ""]:
            return 403, self._headers(), {"detail": "forbidden: insufficient scope"}
        tags = self._tags(call)
        assert call.match is not None
        if tags is None or call.match["tag"] not in tags:
            return 404, self._headers(), {"message": "object not found"}
        digest, _ = tags.pop(call.match["tag"])
        if all(other != digest for other, _ in tags.values()):
            repo = f"{call.match['ns']}/{call.match['name']}"
            self.untagged.setdefault(repo, set()).add(digest)
        return 204, self._headers(), None

    @staticmethod
    def rate_limited(retry_in: float = 0.0) -> Answer:
        """A documented 429: `X-Retry-After` is the unix time when requests may resume."""
        return (
            429,
            {"X-Retry-After": str(int(time.time() + retry_in)), "X-RateLimit-Remaining": "0"},
            {"message": "rate limit exceeded"},
        )


@dataclass
class FakeHubRegistry(FakeApi):
    """Hub's registry side over the same repositories (see the module docstring)."""

    hub: FakeDockerHub | None = None

    def __post_init__(self) -> None:
        manifest = r"/v2/(?P<repo>[^/]+/[^/]+)/manifests/(?P<ref>[^/]+)"
        for method in ("HEAD", "GET"):
            self.route(method, manifest, self._head, S + "registry_manifest.json")
        self.route("DELETE", manifest, self._delete, S + "registry_manifest.json")

    def _state(self, call: Call) -> tuple[str, dict[str, tuple[str, datetime]], set[str]]:
        assert call.match is not None
        assert self.hub is not None
        repo = call.match["repo"]
        return repo, self.hub.repos.get(repo, {}), self.hub.untagged.setdefault(repo, set())

    def _head(self, call: Call) -> Answer:
        _, tags, untagged = self._state(call)
        assert call.match is not None
        ref = call.match["ref"]
        digest = tags[ref][0] if ref in tags else ref
        if digest not in untagged and all(digest != d for d, _ in tags.values()):
            return _registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        media = "application/vnd.oci.image.index.v1+json"
        return 200, {"Docker-Content-Digest": digest, "Content-Type": media}, {"manifests": []}

    def _delete(self, call: Call) -> Answer:
        _, tags, untagged = self._state(call)
        assert call.match is not None
        assert self.hub is not None
        digest = call.match["ref"]
        if not self.hub.registry_may_delete:
            return _registry_error(401, "UNAUTHORIZED", "authentication required")
        if not digest.startswith("sha256:"):
            return _registry_error(405, "UNSUPPORTED", "only digest-based deletion is allowed")
        if any(digest == d for d, _ in tags.values()):
            return _registry_error(403, "DENIED", "manifest is still referenced")
        if digest not in untagged:
            return _registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        untagged.discard(digest)
        return 202, {}, None


def _registry_error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"errors": [{"code": code, "message": message}]}
