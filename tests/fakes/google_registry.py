"""Google's Docker Registry API extensions (GCR / Artifact Registry) over the real local registry.

Served through `tests.fakes._front.Front` in front of `docker-registry`, which stores the
images; this layer adds what Google documents and the plain registry lacks:
- `GET /v2/<name>/tags/list` also returns `manifest`: {digest: {tag[], mediaType,
  timeCreatedMs, timeUploadedMs, imageSizeBytes}} — untagged manifests included (gcloud
  `container images list-tags`; the map as go-containerregistry pkg/v1/google reads it);
- `DELETE /v2/<name>/manifests/<tag>` removes only that tag (202);
- `DELETE /v2/<name>/manifests/<digest>` while a tag still points at it answers 400
  GOOGLE_MANIFEST_DANGLING_TAG (the exchange quoted in github.com/genuinetools/reg/issues/136);
  otherwise the real registry deletes it.
Answers are checked against `tests/fakes/schemas/google/` (the map's shape as
go-containerregistry's `pkg/v1/google` reads it). Tags are read and removed in the registry's
storage (`_manifests/tags/<tag>`), which
distribution re-reads on every request.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from tests.fakes._router import Answer, Call, FakeApi
from tests.support.images import ACCEPT
from tests.support.registry import LocalRegistry

UPLOADED_MS = 1_700_000_000_000  # 2023-11-14, for digests without an explicit time


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"errors": [{"code": code, "message": message}]}


@dataclass
class GoogleRegistry(FakeApi):
    registry: LocalRegistry | None = None
    uploaded_ms: dict[str, int] = field(default_factory=dict)  # digest -> timeUploadedMs
    tag_deletes: list[str] = field(default_factory=list)
    dangling_refusals: int = 0

    def __post_init__(self) -> None:
        self.route("GET", r"/v2/(?P<repo>.+)/tags/list", self._list, "google/tags_list.json")
        delete = "google/manifest_delete.json"
        digest = r"/v2/(?P<repo>.+)/manifests/(?P<ref>sha256(:|%3A)[0-9a-f]+)"
        self.route("DELETE", digest, self._delete, delete)
        self.route("DELETE", r"/v2/(?P<repo>.+)/manifests/(?P<ref>[^/:%]+)", self._untag, delete)

    def _root(self, repo: str) -> Path:
        assert self.registry is not None
        return self.registry.storage / "docker/registry/v2/repositories" / repo / "_manifests"

    def tags_on_disk(self, repo: str) -> dict[str, str]:
        base = self._root(repo) / "tags"
        if not base.is_dir():
            return {}
        found = {}
        for entry in sorted(base.iterdir()):
            link = entry / "current/link"
            if link.is_file():
                found[entry.name] = link.read_text().strip()
        return found

    def _digests_on_disk(self, repo: str) -> list[str]:
        base = self._root(repo) / "revisions/sha256"
        if not base.is_dir():
            return []
        return sorted(f"sha256:{d.name}" for d in base.iterdir() if (d / "link").is_file())

    def _authed(self, call: Call) -> Answer | None:
        if call.headers.get("Authorization"):
            return None
        return (
            401,
            {"WWW-Authenticate": 'Basic realm="fake-google"'},
            _error(401, "UNAUTHORIZED", "")[2],
        )

    def _list(self, call: Call) -> Answer:
        assert call.match is not None
        assert self.registry is not None
        refused = self._authed(call)
        if refused:
            return refused
        repo = call.match["repo"]
        digests = self._digests_on_disk(repo)
        if not digests:
            return _error(404, "NAME_UNKNOWN", "repository unknown")
        tags = self.tags_on_disk(repo)
        session = self.registry.session()
        entries = {}
        for digest in digests:
            head = session.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT})
            millis = self.uploaded_ms.get(digest, UPLOADED_MS)
            entries[digest] = {
                "imageSizeBytes": "1024",
                "mediaType": head.headers.get("Content-Type", ""),
                "tag": sorted(name for name, target in tags.items() if target == digest),
                "timeCreatedMs": str(millis),
                "timeUploadedMs": str(millis),
            }
        return 200, {}, {"child": [], "manifest": entries, "name": repo, "tags": sorted(tags)}

    def _untag(self, call: Call) -> Answer:
        assert call.match is not None
        refused = self._authed(call)
        if refused:
            return refused
        repo, tag = call.match["repo"], unquote(call.match["ref"])
        path = self._root(repo) / "tags" / tag
        if not path.is_dir():
            return _error(404, "MANIFEST_UNKNOWN", f"tag {tag} unknown")
        shutil.rmtree(path)
        self.tag_deletes.append(tag)
        return 202, {}, None

    def _delete(self, call: Call) -> Answer:
        assert call.match is not None
        assert self.registry is not None
        refused = self._authed(call)
        if refused:
            return refused
        repo, digest = call.match["repo"], unquote(call.match["ref"])
        still = [name for name, target in self.tags_on_disk(repo).items() if target == digest]
        if still:
            self.dangling_refusals += 1
            return _error(
                400,
                "GOOGLE_MANIFEST_DANGLING_TAG",
                f"Manifest is still referenced by tag: {', '.join(still)}",
            )
        answer = self.registry.session().delete(f"/v2/{repo}/manifests/{digest}")
        return answer.status_code, {}, answer.json() if answer.content else None
