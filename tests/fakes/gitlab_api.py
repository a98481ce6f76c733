"""A fake of GitLab's container registry REST API and its `/jwt/auth` token endpoint, in front
of a real local registry (token auth) standing in for GitLab's registry.

Follows the GitLab documentation:
- "Container registry API" (docs.gitlab.com/api/container_registry):
  `GET /projects/:id/registry/repositories` -> [{id, name, path, project_id, location,
  created_at}] (`:id` a number or the URL-encoded path); `GET .../repositories/:repository_id/
  tags` -> [{name, path, location}]; `GET .../tags/:tag_name` -> {name, path, location,
  revision, short_revision, digest, created_at, total_size}; `DELETE .../tags/:tag_name`
  removes that tag only -> 200; unknown -> 404 `{"message": "404 Tag Not Found"}`.
- "REST API > Pagination": `page`/`per_page` (max 100) with `X-Page`, `X-Per-Page`,
  `X-Next-Page`, `X-Prev-Page`, `X-Total`, `X-Total-Pages` and a `Link` header. Tags also page
  by keyset (`pagination=keyset`, preferred, offset deprecated): a `Link` rel=next only,
  carrying the last tag name; `keyset` False answers 405 "Keyset pagination is not yet
  available for this type of request", as GitLab does where the registry metadata database
  (needed for keyset) is off.
- "REST API > Authentication": `PRIVATE-TOKEN` (access tokens) or `JOB-TOKEN`; a bad token ->
  401 `{"message": "401 Unauthorized"}`; a job token outside what the instance allows ->
  403 `{"message": "403 Forbidden"}`.
- "Protected container tags": deleting a tag matched by a protection rule is refused
  (403 here, as the issue describes; `{"message": "403 Forbidden - protected tag ..."}`).
- "Container registry token authentication": the registry's Bearer challenge names
  `realm=<gitlab>/jwt/auth`, `service=container_registry`; the client asks that realm with Basic
  `gitlab-ci-token:<CI_JOB_TOKEN>` (or a user and access token) for a JWT with the scopes.
Answers are checked against `tests/fakes/schemas/gitlab/`.
Registry state is read from the registry's storage (tags are `_manifests/tags/<tag>` links), and
a tag delete removes that link directory — what distribution's own tag untag does.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.fakes._loopback import Answer, Call, LoopbackApi
from tests.support.registry import USERNAME, LocalRegistry

ACCESS_TOKEN = "glpat-fake-access-token-0123"
JOB_TOKEN = "glcbt-fake-job-token-4567"
UNAUTHORIZED: Answer = (401, {}, {"message": "401 Unauthorized"})


class GitLabRegistry(LocalRegistry):
    """The local token-auth registry with its Bearer realm moved to the fake's `/jwt/auth`."""

    def __init__(self, realm: str) -> None:
        self._realm = realm
        super().__init__("token")

    def _write_config(self) -> Path:
        path = super()._write_config()
        config = json.loads(path.read_text())
        config["auth"]["token"]["realm"] = self._realm
        path.write_text(json.dumps(config))
        return path


@dataclass
class FakeGitLab(LoopbackApi):
    registry: LocalRegistry | None = None
    projects: dict[int, str] = field(default_factory=lambda: {7: "grp/proj"})
    access_tokens: set[str] = field(default_factory=lambda: {ACCESS_TOKEN})
    job_token: str = JOB_TOKEN
    job_token_can_delete: bool = True
    protected: set[str] = field(default_factory=set)  # tag names a protection rule covers
    keyset: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids: dict[str, int] = {}
        self._next = itertools.count(100)
        self._state = threading.Lock()
        project = r"/api/v4/projects/(?P<project>[^/]+)/registry/repositories"
        tags = project + r"/(?P<rid>\d+)/tags"
        self.route("GET", project, self._repositories, "gitlab/repositories.json")
        self.route("GET", tags, self._tags, "gitlab/tags.json")
        self.route("GET", tags + r"/(?P<tag>[^/]+)", self._tag, "gitlab/tag.json")
        self.route("DELETE", tags + r"/(?P<tag>[^/]+)", self._delete, "gitlab/tag_delete.json")
        self.route("GET", r"/jwt/auth", self._jwt, "gitlab/jwt_auth.json")

    @property
    def api_url(self) -> str:
        return self.url + "/api/v4"

    @property
    def realm(self) -> str:
        return self.url + "/jwt/auth"

    # --- registry storage -----------------------------------------------------------------

    def _root(self) -> Path:
        assert self.registry is not None
        return self.registry.storage / "docker/registry/v2"

    def _repos(self) -> list[str]:
        base = self._root() / "repositories"
        found = []
        for current, dirs, _ in os.walk(base):
            if "_manifests" in dirs:
                found.append(str(Path(current).relative_to(base)))
            dirs[:] = [d for d in dirs if not d.startswith("_")]  # skip link and blob trees
        return sorted(found)

    def _tag_dir(self, repo: str) -> Path:
        return self._root() / "repositories" / repo / "_manifests/tags"

    def _digest(self, repo: str, tag: str) -> str | None:
        link = self._tag_dir(repo) / tag / "current/link"
        return link.read_text().strip() if link.exists() else None

    def _blob(self, digest: str) -> bytes:
        hexdigest = digest.split(":", 1)[1]
        return (self._root() / "blobs/sha256" / hexdigest[:2] / hexdigest / "data").read_bytes()

    def _created(self, digest: str) -> str | None:
        manifest = json.loads(self._blob(digest))
        config = (manifest.get("config") or {}).get("digest")
        if not config:
            return None
        created = json.loads(self._blob(config)).get("created")
        return str(created) if created else None

    # --- auth -----------------------------------------------------------------------------

    def _auth(self, call: Call, deleting: bool = False) -> Answer | None:
        private = call.headers.get("PRIVATE-TOKEN") or call.headers.get("Private-Token")
        job = call.headers.get("JOB-TOKEN") or call.headers.get("Job-Token")
        if private in self.access_tokens:
            return None
        if job and job == self.job_token:
            if deleting and not self.job_token_can_delete:
                return 403, {}, {"message": "403 Forbidden"}
            return None
        return UNAUTHORIZED

    def _jwt(self, call: Call) -> Answer:
        assert self.registry is not None
        assert self.registry.token_server is not None
        header = call.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return UNAUTHORIZED
        _, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        # CI jobs send gitlab-ci-token:<CI_JOB_TOKEN>; tests seed as the registry's own user.
        known = self.registry.token_server.check_basic(header)
        if secret != self.job_token and secret not in self.access_tokens and not known:
            return UNAUTHORIZED
        token = self.registry.token_server.issue(USERNAME, call.query_all("scope"))
        return 200, {}, {"token": token, "expires_in": 300}

    # --- routes ---------------------------------------------------------------------------

    def _project(self, call: Call) -> str | None:
        assert call.match is not None
        key = unquote(call.match["project"])
        if key.isdigit():
            return self.projects.get(int(key))
        return key if key in self.projects.values() else None

    def _repo_id(self, path: str) -> int:
        with self._state:
            if path not in self._ids:
                self._ids[path] = next(self._next)
            return self._ids[path]

    def _repo(self, call: Call) -> str | None:
        project = self._project(call)
        assert call.match is not None
        wanted = int(call.match["rid"])
        for repo in self._repos():
            if self._repo_id(repo) == wanted and project and _under(repo, project):
                return repo
        return None

    def _repositories(self, call: Call) -> Answer:
        refused = self._auth(call)
        if refused:
            return refused
        project = self._project(call)
        if project is None:
            return 404, {}, {"message": "404 Project Not Found"}
        pid = next(k for k, v in self.projects.items() if v == project)
        items = [
            {"id": self._repo_id(repo), "name": repo[len(project) + 1 :], "path": repo,
             "project_id": pid, "location": f"registry.example/{repo}",
             "created_at": "2024-01-01T00:00:00.000Z"}
            for repo in self._repos() if _under(repo, project)
        ]  # fmt: skip
        return self._page(call, items)

    def _tags(self, call: Call) -> Answer:
        refused = self._auth(call)
        if refused:
            return refused
        repo = self._repo(call)
        if repo is None:
            return 404, {}, {"message": "404 Repository Not Found"}
        names = sorted(p.name for p in self._tag_dir(repo).iterdir()) if self._tag_dir(
            repo
        ).exists() else []  # fmt: skip
        items = [{"name": n, "path": f"{repo}:{n}", "location": f"r/{repo}:{n}"} for n in names]
        if call.query.get("pagination") == "keyset":
            return self._keyset(call, items)
        return self._page(call, items)

    def _keyset(self, call: Call, items: list[dict[str, str]]) -> Answer:
        if not self.keyset:
            return 405, {}, {"message": "Keyset pagination is not yet available for this type "
                             "of request"}  # fmt: skip
        per_page = min(int(call.query.get("per_page", "20")), 100)
        descending = call.query.get("sort") == "desc"
        items = sorted(items, key=lambda item: item["name"], reverse=descending)
        last = call.query.get("last")
        if last:
            items = [i for i in items if (i["name"] < last if descending else i["name"] > last)]
        chunk = items[:per_page]
        headers = {}
        if len(items) > per_page:
            query = {**call.query, "last": chunk[-1]["name"]}
            link = "&".join(f"{key}={value}" for key, value in query.items())
            headers["Link"] = f'<{self.url}{call.path}?{link}>; rel="next"'
        return 200, headers, chunk

    def _tag(self, call: Call) -> Answer:
        refused = self._auth(call)
        if refused:
            return refused
        repo = self._repo(call)
        assert call.match is not None
        tag = unquote(call.match["tag"])
        digest = self._digest(repo, tag) if repo else None
        if repo is None or digest is None:
            return 404, {}, {"message": "404 Tag Not Found"}
        return 200, {}, {
            "name": tag, "path": f"{repo}:{tag}", "location": f"r/{repo}:{tag}",
            "revision": digest.split(":")[1], "short_revision": digest.split(":")[1][:9],
            "digest": digest, "created_at": self._created(digest), "total_size": 1234,
        }  # fmt: skip

    def _delete(self, call: Call) -> Answer:
        refused = self._auth(call, deleting=True)
        if refused:
            return refused
        repo = self._repo(call)
        assert call.match is not None
        tag = unquote(call.match["tag"])
        if repo is None or self._digest(repo, tag) is None:
            return 404, {}, {"message": "404 Tag Not Found"}
        if tag in self.protected:
            return 403, {}, {"message": f"403 Forbidden - protected tag {tag} cannot be deleted"}
        shutil.rmtree(self._tag_dir(repo) / tag)
        return 200, {}, None

    def _page(self, call: Call, items: list[Any]) -> Answer:
        per_page = min(int(call.query.get("per_page", "20")), 100)
        page = int(call.query.get("page", "1"))
        pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if page < pages:
            query = "&".join(f"{k}={v}" for k, v in call.query.items() if k != "page")
            headers["Link"] = f'<{self.url}{call.path}?{query}&page={page + 1}>; rel="next"'
        return 200, headers, items[(page - 1) * per_page : page * per_page]


def _under(repo: str, project: str) -> bool:
    return repo == project or repo.startswith(project + "/")
