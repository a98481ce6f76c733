"""A fake of the Harbor v2.0 artifacts API for the `harbor` backend.

Follows Harbor's swagger (`api/v2.0/swagger.yaml`, tags "artifact"; also published as the
harbor-api crate docs): `repository_name` "If it contains slash, encode it twice over with URL
encoding. e.g. a/b -> a%2Fb -> a%252Fb" — a once-encoded slash reaches the router as a path
separator and 404s here, as on Harbor.
- `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts?page&page_size&with_tag` -> a JSON
  list of {digest, manifest_media_type, push_time, tags: [{name, push_time, immutable}],
  references, accessories}; `X-Total-Count` and `Link: <...>; rel="next"` headers.
- `GET .../artifacts/{reference}` (tag or digest) -> one artifact, 404 NOT_FOUND.
- `DELETE .../artifacts/{digest}/tags/{tag}` -> 200; 412 PRECONDITION for an immutable tag.
- `DELETE .../artifacts/{digest}` -> 200; 412 PRECONDITION when another artifact references it.
- Basic auth; 401 UNAUTHORIZED without it, 403 FORBIDDEN for a user without delete rights.
Errors use Harbor's body {"errors": [{"code": ..., "message": ...}]}.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.fakes._router import Answer, Call, FakeApi

BASE_URL = "https://harbor.fake.test"


@dataclass
class Artifact:
    digest: str
    push_time: str
    tags: dict[str, bool] = field(default_factory=dict)  # name -> immutable
    references: list[str] = field(default_factory=list)


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"errors": [{"code": code, "message": message}]}


@dataclass
class FakeHarbor(FakeApi):
    # "project/repo/path" -> digest -> Artifact
    repos: dict[str, dict[str, Artifact]] = field(default_factory=dict)
    users: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {"robot$ci": ("robot-secret", True), "viewer": ("viewer-pw", False)}
    )

    def __post_init__(self) -> None:
        base = r"/api/v2.0/projects/(?P<p>[^/]+)/repositories/(?P<r>[^/]+)/artifacts"
        self.route("GET", base, self._list)
        self.route("GET", base + r"/(?P<ref>[^/]+)", self._get)
        self.route("DELETE", base + r"/(?P<ref>[^/]+)/tags/(?P<tag>[^/]+)", self._untag)
        self.route("DELETE", base + r"/(?P<ref>[^/]+)", self._delete)

    def _user(self, call: Call) -> tuple[str, bool] | None:
        header = call.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        known = self.users.get(user)
        return (user, known[1]) if known and known[0] == password else None

    def _repo(self, call: Call) -> dict[str, Artifact] | None:
        assert call.match is not None
        once = unquote(call.match["r"])  # what Harbor's router sees
        if "/" in once:
            return None
        return self.repos.get(f"{unquote(call.match['p'])}/{unquote(once)}")

    def _json(self, artifact: Artifact) -> dict[str, object]:
        return {
            "digest": artifact.digest,
            "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
            "push_time": artifact.push_time,
            "tags": [
                {"name": name, "push_time": artifact.push_time, "immutable": immutable}
                for name, immutable in sorted(artifact.tags.items())
            ]
            or None,
            "references": [{"child_digest": child} for child in artifact.references] or None,
            "accessories": None,
        }

    def _list(self, call: Call) -> Answer:
        if self._user(call) is None:
            return _error(401, "UNAUTHORIZED", "unauthorized")
        artifacts = self._repo(call)
        if artifacts is None:
            return _error(404, "NOT_FOUND", "repository not found")
        size = min(int(call.query.get("page_size", "10")), 100)
        page = int(call.query.get("page", "1"))
        ordered = sorted(artifacts.values(), key=lambda item: item.digest)
        chunk = ordered[(page - 1) * size : page * size]
        headers = {"X-Total-Count": str(len(ordered))}
        if page * size < len(ordered):
            headers["Link"] = (
                f'<{call.path}?page={page + 1}&page_size={size}&with_tag=true>; rel="next"'
            )
        return 200, headers, [self._json(item) for item in chunk]

    def _find(self, artifacts: dict[str, Artifact], ref: str) -> Artifact | None:
        if ref in artifacts:
            return artifacts[ref]
        return next((item for item in artifacts.values() if ref in item.tags), None)

    def _get(self, call: Call) -> Answer:
        if self._user(call) is None:
            return _error(401, "UNAUTHORIZED", "unauthorized")
        artifacts = self._repo(call) or {}
        assert call.match is not None
        found = self._find(artifacts, unquote(call.match["ref"]))
        return (200, {}, self._json(found)) if found else _error(404, "NOT_FOUND", "not found")

    def _may_delete(self, call: Call) -> Answer | None:
        user = self._user(call)
        if user is None:
            return _error(401, "UNAUTHORIZED", "unauthorized")
        if not user[1]:
            return _error(403, "FORBIDDEN", "forbidden")
        return None

    def _untag(self, call: Call) -> Answer:
        refused = self._may_delete(call)
        if refused:
            return refused
        assert call.match is not None
        artifact = (self._repo(call) or {}).get(unquote(call.match["ref"]))
        tag = unquote(call.match["tag"])
        if artifact is None or tag not in artifact.tags:
            return _error(404, "NOT_FOUND", f"tag {tag} not found")
        if artifact.tags[tag]:
            return _error(412, "PRECONDITION", f"the tag {tag} is immutable, cannot be deleted")
        del artifact.tags[tag]
        return 200, {}, None

    def _delete(self, call: Call) -> Answer:
        refused = self._may_delete(call)
        if refused:
            return refused
        assert call.match is not None
        artifacts = self._repo(call) or {}
        digest = unquote(call.match["ref"])
        if digest not in artifacts:
            return _error(404, "NOT_FOUND", "artifact not found")
        if any(digest in other.references for other in artifacts.values()):
            return _error(
                412, "PRECONDITION", "the artifact is referenced by others, cannot delete"
            )
        if any(artifacts[digest].tags.values()):
            return _error(412, "PRECONDITION", "the artifact has immutable tags, cannot delete")
        for child in artifacts.pop(digest).references:
            artifacts.pop(child, None)  # Harbor cascades to unreferenced children
        return 200, {}, None
