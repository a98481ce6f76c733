"""A fake of the Harbor v2.0 artifacts API for the `harbor` backend.

Follows Harbor's swagger (`api/v2.0/swagger.yaml`, tags "artifact"; also published as the
harbor-api crate docs): `repository_name` "If it contains slash, encode it twice over with URL
encoding. e.g. a/b -> a%2Fb -> a%252Fb" — a once-encoded slash reaches the router as a path
separator and 404s here, as on Harbor.
- `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts?page&page_size&with_tag&
  with_accessory&with_immutable_status&q` -> a JSON list of Artifact {digest,
  manifest_media_type, push_time, tags: [{name, push_time, immutable}], references,
  accessories}; `X-Total-Count` and `Link: <...>; rel="next"` headers. As Harbor's handler
  does: only top-level artifacts unless `q=base=*` (index children and accessories hidden);
  `immutable` true only with with_immutable_status=true; `accessories` null unless
  with_accessory=true.
- `GET .../artifacts/{reference}` (tag or digest) -> one artifact, 404 NOT_FOUND.
- `DELETE .../artifacts/{digest}/tags/{tag}` -> 200; 412 PRECONDITION for an immutable tag.
- `DELETE .../artifacts/{digest}` -> 200, cascading to unreferenced children and accessories;
  412 VIOLATE_FOREIGN_KEY_CONSTRAINT when another artifact references it.
- Basic auth; 401 UNAUTHORIZED without it, 403 FORBIDDEN for a user without delete rights.
- Registry side (`serve_registry`): `GET/HEAD /v2/{name}/manifests/{ref}`; the first
  `policy_blocks` pulls answer 412 PROJECTPOLICYVIOLATION (a scan-gated project). Harbor's
  /service/token dance is not modelled (the default backend's, tested on the real registry).
Errors use Harbor's body {"errors": [{"code": ..., "message": ...}]}. Every answer is checked
against `tests/fakes/schemas/harbor/` (swagger definitions plus the server's 412 codes).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

from tests.fakes._router import Answer, Call, FakeApi

BASE_URL = "https://harbor.fake.test"
S = "harbor/"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    }
)
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST.encode()).hexdigest()


@dataclass
class Artifact:
    digest: str
    push_time: str
    tags: dict[str, bool] = field(default_factory=dict)  # name -> immutable
    references: list[str] = field(default_factory=list)
    subject: str = ""  # an accessory (signature, SBOM) names its subject artifact
    accessory_type: str = "signature.cosign"


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"errors": [{"code": code, "message": message}]}


@dataclass
class FakeHarbor(FakeApi):
    # "project/repo/path" -> digest -> Artifact
    repos: dict[str, dict[str, Artifact]] = field(default_factory=dict)
    users: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {"robot$ci": ("robot-secret", True), "viewer": ("viewer-pw", False)}
    )
    policy_blocks: int = 0
    serve_registry: bool = False  # off where a Front forwards /v2 to the real registry

    def __post_init__(self) -> None:
        base = r"/api/v2.0/projects/(?P<p>[^/]+)/repositories/(?P<r>[^/]+)/artifacts"
        self.route("GET", base, self._list, S + "list_artifacts.json")
        self.route("GET", base + r"/(?P<ref>[^/]+)", self._get, S + "get_artifact.json")
        tag = base + r"/(?P<ref>[^/]+)/tags/(?P<tag>[^/]+)"
        self.route("DELETE", tag, self._untag, S + "delete_tag.json")
        self.route("DELETE", base + r"/(?P<ref>[^/]+)", self._delete, S + "delete_artifact.json")
        manifest = r"/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)"
        for method in ("GET", "HEAD") if self.serve_registry else ():
            self.route(method, manifest, self._manifest, S + "registry_manifest.json")

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

    def _json(
        self,
        artifact: Artifact,
        artifacts: dict[str, Artifact],
        call: Call,
    ) -> dict[str, object]:
        immutability = call.query.get("with_immutable_status") == "true"
        accessories = [item for item in artifacts.values() if item.subject == artifact.digest]
        return {
            "digest": artifact.digest,
            "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
            "push_time": artifact.push_time,
            "tags": [
                {"name": name, "push_time": artifact.push_time, "immutable": fixed and immutability}
                for name, fixed in sorted(artifact.tags.items())
            ]
            or None,
            "references": [{"child_digest": child} for child in artifact.references] or None,
            "accessories": [
                {"digest": item.digest, "type": item.accessory_type, "size": 512}
                for item in accessories
            ]
            if call.query.get("with_accessory") == "true"
            else None,
        }

    def _top_level(self, artifacts: dict[str, Artifact], call: Call) -> list[Artifact]:
        if "base=*" in call.query.get("q", ""):
            return list(artifacts.values())
        children = {child for item in artifacts.values() for child in item.references}
        return [a for a in artifacts.values() if a.digest not in children and not a.subject]

    def _manifest(self, call: Call) -> Answer:
        if self.policy_blocks > 0:
            self.policy_blocks -= 1
            return _error(412, "PROJECTPOLICYVIOLATION", "current image without vulnerability "
                          "scanning cannot be pulled due to configured policy")  # fmt: skip
        # One manifest, announced by its own digest as a registry does (ci-env checks content).
        media = "application/vnd.oci.image.manifest.v1+json"
        return 200, {"Docker-Content-Digest": MANIFEST_DIGEST, "Content-Type": media}, MANIFEST

    def _list(self, call: Call) -> Answer:
        if self._user(call) is None:
            return _error(401, "UNAUTHORIZED", "unauthorized")
        artifacts = self._repo(call)
        if artifacts is None:
            return _error(404, "NOT_FOUND", "repository not found")
        size = min(int(call.query.get("page_size", "10")), 100)
        page = int(call.query.get("page", "1"))
        ordered = sorted(self._top_level(artifacts, call), key=lambda item: item.digest)
        chunk = ordered[(page - 1) * size : page * size]
        headers = {"X-Total-Count": str(len(ordered))}
        if page * size < len(ordered):
            # Harbor's links keep the request's query, the page number changed.
            query = urlencode({**call.query, "page": str(page + 1), "page_size": str(size)})
            headers["Link"] = f'<{call.path}?{query}>; rel="next"'
        return 200, headers, [self._json(item, artifacts, call) for item in chunk]

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
        if found is None:
            return _error(404, "NOT_FOUND", "not found")
        return 200, {}, self._json(found, artifacts, call)

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
                412,
                "VIOLATE_FOREIGN_KEY_CONSTRAINT",
                "the deleting artifact is referenced by others",
            )
        if any(artifacts[digest].tags.values()):
            return _error(412, "PRECONDITION", "the artifact has immutable tags, cannot delete")
        for child in artifacts.pop(digest).references:
            artifacts.pop(child, None)  # Harbor cascades to unreferenced children
        for item in [a for a in artifacts.values() if a.subject == digest]:
            del artifacts[item.digest]  # and to the accessories of the artifact
        return 200, {}, None
