"""A fake of Artifactory's native Docker tag delete, next to a real registry for /v2.

Follows JFrog's "Deletion and cleanup of Docker tags and repositories"
(https://jfrog.com/help/r/jfrog-artifactory-documentation/deletion-and-cleanup-of-docker-tags-and-repositories):
`DELETE <Artifactory URL>/artifactory/<Docker repository key>/<image namespace>/<tag>` removes
that tag's folder only (204); Basic auth, 401 with `WWW-Authenticate: Basic realm="Artifactory
Realm"` without it; 404 for an unknown path. `GET /artifactory/api/system/ping` -> "OK".
The `/v2/...` Docker Registry API is the real local registry (the repository path method).
Answers are checked against `tests/fakes/schemas/artifactory/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.fakes._router import Answer, Call, FakeApi


@dataclass
class FakeArtifactory(FakeApi):
    tags: set[str] = field(default_factory=set)  # "key/image/path/tag" paths that exist
    deleted: list[str] = field(default_factory=list)
    # Called with "key/image/path/tag" after a delete (CLI tests drop the tag in the real registry).
    on_delete: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        ping = r"/artifactory/api/system/ping"
        self.route("GET", ping, lambda call: (200, {}, "OK"), "artifactory/ping.json")
        self.route(
            "DELETE", r"/artifactory/(?P<path>.+)", self._delete, "artifactory/delete_item.json"
        )

    def _delete(self, call: Call) -> Answer:
        if not call.headers.get("Authorization", "").startswith("Basic "):
            return (
                401,
                {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'},
                {"errors": [{"status": 401, "message": "Authentication is required"}]},
            )
        assert call.match is not None
        path = unquote(call.match["path"])
        if path not in self.tags:
            return 404, {}, {"errors": [{"status": 404, "message": "Could not locate artifact"}]}
        self.tags.discard(path)
        self.deleted.append(path)
        if self.on_delete is not None:
            self.on_delete(path)
        return 204, {}, None
