"""A fake of the Docker Hub API (hub.docker.com) for the `dockerhub` backend.

Follows the Docker Hub API reference (https://docs.docker.com/reference/api/hub/latest/):
- `POST /v2/auth/token` {identifier, secret} -> 200 {access_token}; wrong secret -> 401.
  `POST /v2/users/login` {username, password} -> {token} (the deprecated login werf used).
- `GET /v2/namespaces/{ns}/repositories/{repo}/tags?page_size&page` -> {count, next,
  previous, results: [{name, digest, media_type, tag_last_pushed, last_updated}]}; `next` is
  an absolute URL or null; page_size at most 100.
- `GET /v2/namespaces/{ns}/repositories/{repo}/tags/{tag}` -> one tag, 404 when unknown.
- `DELETE /v2/repositories/{ns}/{repo}/tags/{tag}/` -> 204; 403 for a token without delete
  rights (personal access tokens without the delete scope, werf issue #2132); 401 without auth.
- Every answer carries `X-RateLimit-Limit/Remaining/Reset`; a 429 carries `X-Retry-After`
  (unix seconds) — tests queue one with `fail_next`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from tests.fakes._router import Answer, Call, FakeApi, bearer

BASE_URL = "https://hub.fake.test"


@dataclass
class FakeDockerHub(FakeApi):
    # repository "ns/name" -> tag -> (digest, pushed)
    repos: dict[str, dict[str, tuple[str, datetime]]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=lambda: {"ci": "hub-password"})
    # tokens the API accepts; the value says whether the token may delete
    tokens: dict[str, bool] = field(default_factory=dict)
    legacy_login_only: bool = False

    def __post_init__(self) -> None:
        self.route("POST", r"/v2/auth/token", self._auth_token)
        self.route("POST", r"/v2/users/login", self._login)
        repo = r"/v2/namespaces/(?P<ns>[^/]+)/repositories/(?P<name>[^/]+)"
        self.route("GET", repo + r"/tags", self._list)
        self.route("GET", repo + r"/tags/(?P<tag>[^/]+)", self._get)
        self.route(
            "DELETE",
            r"/v2/repositories/(?P<ns>[^/]+)/(?P<name>[^/]+)/tags/(?P<tag>[^/]+)",
            self._delete,
        )

    def _issue(self, user: str, can_delete: bool = True) -> str:
        token = f"hub-jwt-{user}-{len(self.tokens)}"
        self.tokens[token] = can_delete
        return token

    def _auth_token(self, call: Call) -> Answer:
        if self.legacy_login_only:
            return 404, {}, {"message": "not found"}
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
        return {
            "name": name,
            "digest": digest,
            "media_type": "application/vnd.oci.image.index.v1+json",
            "tag_last_pushed": stamp,
            "last_updated": stamp,
            "tag_status": "active",
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
        nxt = f"{self.base_url}{path}?page={page + 1}&page_size={size}" if more else None
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
        token = bearer(call)
        if token is None or token not in self.tokens:
            return 401, self._headers(), {"detail": "authentication required"}
        if not self.tokens[token]:
            return 403, self._headers(), {"detail": "forbidden: insufficient scope"}
        tags = self._tags(call)
        assert call.match is not None
        if tags is None or call.match["tag"] not in tags:
            return 404, self._headers(), {"message": "object not found"}
        del tags[call.match["tag"]]
        return 204, self._headers(), None

    @staticmethod
    def rate_limited(retry_in: float = 0.0) -> Answer:
        """A documented 429: `X-Retry-After` is the unix time when requests may resume."""
        return (
            429,
            {"X-Retry-After": str(int(time.time() + retry_in)), "X-RateLimit-Remaining": "0"},
            {"message": "rate limit exceeded"},
        )
