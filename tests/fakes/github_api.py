"""A fake of GitHub's REST package endpoints, backed by a real local registry standing in for
ghcr.io's registry side.

Follows the GitHub REST documentation:
- "REST API endpoints for packages" (docs.github.com/en/rest/packages/packages):
  `GET /orgs/{org}/packages/{package_type}/{package_name}/versions` and the
  `/users/{username}/...` form, `per_page` (max 100) and `page`, newest first; a version is
  `{id, name: <digest>, url, created_at, updated_at, metadata: {package_type: "container",
  container: {tags: [...]}}}`; `DELETE .../versions/{package_version_id}` -> 204; unknown
  package or version -> 404 `{"message": "Package not found."}`;
  `GET /orgs/{org}/packages?package_type=container` lists packages `{id, name, package_type}`.
  A package name containing `/` arrives percent-encoded (`%2F`) in one path segment.
- "Get a user" (`GET /users/{username}` -> `{login, type: "User"|"Organization"}`).
- "Using pagination in the REST API": `Link: <...page=2>; rel="next", <...>; rel="last"`.
- "Rate limits for the REST API": a secondary rate limit answers 403 (or 429) with
  `{"message": "You have exceeded a secondary rate limit..."}` and `retry-after` seconds,
  or `x-ratelimit-remaining: 0` with `x-ratelimit-reset` (epoch seconds).
- "Troubleshooting": a bad token -> 401 `{"message": "Bad credentials"}`; a token without
  access (e.g. the Actions GITHUB_TOKEN on an unlinked package) -> 403
  `{"message": "Resource not accessible by integration"}`.
Answers are checked against `tests/fakes/schemas/github/`, written from GitHub's OpenAPI
description (github/rest-api-description): `package-version`, `package`, `public-user`,
`basic-error`, the `link` header.
On ghcr.io each pushed manifest is a version, index children and referrers included
(untagged), so versions are derived from what the registry holds: the tags it lists plus every
manifest the fake has seen that still exists. Deleting a version deletes that manifest by
digest on the registry, as GHCR does (every tag on it goes).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fakes._loopback import Answer, Call, LoopbackApi
from tests.support.images import ACCEPT, DOCKER_LIST, OCI_INDEX
from tests.support.registry import LocalRegistry

TOKEN = "ghp_fake_github_token_0123456789"
NOT_FOUND: Answer = (404, {}, {"message": "Package not found.", "documentation_url": "x"})
SECONDARY: dict[str, Any] = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
    "you try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}


@dataclass
class _Version:
    id: int
    digest: str
    created: dt.datetime
    updated: dt.datetime
    tags: tuple[str, ...] = ()


@dataclass
class FakeGitHub(LoopbackApi):
    registry: LocalRegistry | None = None
    owners: dict[str, str] = field(default_factory=lambda: {"acme": "Organization", "octo": "User"})
    token: str = TOKEN
    deny: bool = False  # answer 403 "Resource not accessible by integration" to deletes
    versions: dict[str, dict[str, _Version]] = field(default_factory=dict)  # repo -> digest

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = itertools.count(1000)
        self._state = threading.RLock()
        self._session: Any = None
        owner = r"/(?P<kind>orgs|users)/(?P<owner>[^/]+)"
        package = owner + r"/packages/container/(?P<package>[^/]+)"
        self.route("GET", r"/users/(?P<login>[^/]+)", self._user, "github/user.json")
        self.route("GET", owner + r"/packages", self._packages, "github/packages.json")
        self.route("GET", package + r"/versions", self._list, "github/versions.json")
        self.route(
            "DELETE",
            package + r"/versions/(?P<id>\d+)",
            self._delete,
            "github/version_delete.json",
        )

    # --- helpers for tests ----------------------------------------------------------------

    def rate_limit_next(self, method: str, part: str, seconds: int = 1, times: int = 1) -> None:
        self.fail_next(method, part, (403, {"Retry-After": str(seconds)}, SECONDARY), times)

    def secondary_429_next(self, method: str, part: str, times: int = 1) -> None:
        """A secondary limit as 429 with neither retry-after nor x-ratelimit-remaining: 0
        (documented: then wait at least a minute, longer on each repeat)."""
        self.fail_next(method, part, (429, {}, SECONDARY), times)

    def version_ids(self, repo: str) -> dict[str, int]:
        self._sync(repo)
        return {digest: v.id for digest, v in self.versions.get(repo, {}).items()}

    # --- the registry as the source of truth ----------------------------------------------

    def _registry_get(self, path: str, head: bool = False) -> Any:
        assert self.registry is not None
        if self._session is None:
            self._session = self.registry.session()
        session = self._session
        method = session.head if head else session.get
        return method(path, headers={"Accept": ACCEPT}, timeout=30)

    def _sync(self, repo: str) -> None:
        """Versions = manifests the registry holds (tagged ones, plus seen ones still there)."""
        with self._state:
            known = self.versions.setdefault(repo, {})
            answer = self._registry_get(f"/v2/{repo}/tags/list")
            tags = (answer.json().get("tags") or []) if answer.status_code == 200 else []
            tagged: dict[str, list[str]] = {}
            for tag in tags:
                head = self._registry_get(f"/v2/{repo}/manifests/{tag}", head=True)
                if head.status_code == 200:
                    tagged.setdefault(head.headers["Docker-Content-Digest"], []).append(tag)
            now = dt.datetime.now(dt.UTC)
            for digest, names in tagged.items():
                self._add(known, repo, digest, now)
                if set(names) != set(known[digest].tags):
                    known[digest].tags, known[digest].updated = tuple(sorted(names)), now
            for digest in list(known):
                if digest in tagged:
                    continue
                exists = self._registry_get(f"/v2/{repo}/manifests/{digest}", head=True)
                if exists.status_code == 200:
                    known[digest].tags = ()
                else:
                    del known[digest]

    def _add(self, known: dict[str, _Version], repo: str, digest: str, now: dt.datetime) -> None:
        if digest in known:
            return
        known[digest] = _Version(next(self._ids), digest, now, now)
        body = self._registry_get(f"/v2/{repo}/manifests/{digest}")
        if body.status_code == 200 and json.loads(body.content).get("mediaType") in (
            OCI_INDEX,
            DOCKER_LIST,
        ):
            for child in json.loads(body.content).get("manifests") or []:
                self._add(known, repo, child["digest"], now)

    # --- routes ---------------------------------------------------------------------------

    def _authorised(self, call: Call) -> Answer | None:
        value = call.headers.get("Authorization", "")
        if value.split(" ", 1)[-1] != self.token or not value:
            return 401, {}, {"message": "Bad credentials", "documentation_url": "x"}
        return None

    def _repo(self, call: Call) -> tuple[str, str] | None:
        assert call.match is not None
        owner, kind = call.match["owner"], call.match["kind"]
        expected = "orgs" if self.owners.get(owner) == "Organization" else "users"
        if owner not in self.owners or kind != expected:
            return None
        return owner, f"{owner}/{unquote(call.match['package'])}"

    def _user(self, call: Call) -> Answer:
        assert call.match is not None
        login = call.match["login"]
        if login not in self.owners:
            return 404, {}, {"message": "Not Found"}
        return 200, {}, _public_user(login, self.owners[login])

    def _packages(self, call: Call) -> Answer:
        refused = self._authorised(call)
        if refused:
            return refused
        assert call.match is not None
        assert self.registry is not None
        owner = call.match["owner"]
        catalog = self.registry.session().get("/v2/_catalog", timeout=30).json()
        names = [r[len(owner) + 1 :] for r in catalog.get("repositories") or []
                 if r.startswith(owner + "/")]  # fmt: skip
        return self._page(call, [_package(i, name) for i, name in enumerate(names)])

    def _list(self, call: Call) -> Answer:
        refused = self._authorised(call)
        if refused:
            return refused
        found = self._repo(call)
        if found is None:
            return NOT_FOUND
        repo = found[1]
        if call.query.get("page", "1") == "1":  # later pages read the same snapshot
            self._sync(repo)
        if not self.versions.get(repo):
            return NOT_FOUND
        newest = sorted(self.versions[repo].values(), key=lambda v: v.id, reverse=True)
        return self._page(call, [self._render(v) for v in newest])

    def _page(self, call: Call, items: list[Any]) -> Answer:
        per_page = min(int(call.query.get("per_page", "30")), 100)
        page = int(call.query.get("page", "1"))
        last = max(1, -(-len(items) // per_page))
        links = []
        query = "&".join(f"{k}={v}" for k, v in call.query.items() if k != "page")
        if page < last:
            links.append(f'<{self.url}{call.path}?{query}&page={page + 1}>; rel="next"')
            links.append(f'<{self.url}{call.path}?{query}&page={last}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _render(self, version: _Version) -> dict[str, Any]:
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        return {
            "id": version.id,
            "name": version.digest,
            "url": f"{self.url}/versions/{version.id}",
            "package_html_url": "https://github.com/fake",
            "created_at": version.created.strftime(stamp),
            "updated_at": version.updated.strftime(stamp),
            "metadata": {"package_type": "container", "container": {"tags": list(version.tags)}},
        }

    def _delete(self, call: Call) -> Answer:
        refused = self._authorised(call)
        if refused:
            return refused
        if self.deny:
            return 403, {}, {"message": "Resource not accessible by integration"}
        found = self._repo(call)
        assert call.match is not None
        if found is None:
            return NOT_FOUND
        repo, wanted = found[1], int(call.match["id"])
        with self._state:
            version = next(
                (v for v in self.versions.get(repo, {}).values() if v.id == wanted), None
            )
            if version is None:
                return NOT_FOUND
            answer = self.registry.session().delete(  # type: ignore[union-attr]
                f"/v2/{repo}/manifests/{version.digest}", timeout=30
            )
            if answer.status_code not in (202, 404):
                return 500, {}, {"message": f"fake: registry said {answer.status_code}"}
            del self.versions[repo][version.digest]
        return 204, {}, None


STAMP = "2024-01-01T00:00:00Z"


def _public_user(login: str, kind: str) -> dict[str, Any]:
    """A `public-user` with every field the schema requires (the client reads `type`)."""
    urls = (
        "avatar_url html_url followers_url following_url gists_url starred_url "
        "subscriptions_url organizations_url repos_url events_url received_events_url"
    ).split()
    user: dict[str, Any] = {key: f"https://fake.test/{login}/{key}" for key in urls}
    user.update(login=login, id=1, node_id="U_1", gravatar_id="", type=kind, site_admin=False)
    user.update(url=f"https://fake.test/users/{login}", created_at=STAMP, updated_at=STAMP)
    user.update(dict.fromkeys(("name", "company", "blog", "location", "email", "bio")))
    user.update(hireable=None, public_repos=0, public_gists=0, followers=0, following=0)
    return user


def _package(number: int, name: str) -> dict[str, Any]:
    return {
        "id": number,
        "name": name,
        "package_type": "container",
        "url": f"https://fake.test/packages/{number}",
        "html_url": f"https://fake.test/packages/{number}",
        "version_count": 1,
        "visibility": "private",
        "created_at": STAMP,
        "updated_at": STAMP,
    }
