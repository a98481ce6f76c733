"""A fake of the Quay API v1 tag endpoints for the `quay` backend.

Follows the Red Hat Quay API reference, chapter "tag"
(https://docs.redhat.com/en/documentation/red_hat_quay/3/html/red_hat_quay_api_reference/tag)
and "Viewing and modifying tags" (use_red_hat_quay):
and Quay's own source (quay/quay `endpoints/api/tag.py`: `_tag_dict`, `listRepoTags`,
`deleteFullTag`); answers are checked against `tests/fakes/schemas/quay/`:
- `GET /api/v1/repository/{ns}/{repo}/tag/?onlyActiveTags&limit&page&specificTag` ->
  {tags: [{name, reversion, manifest_digest, is_manifest_list, size, start_ts, last_modified,
  end_ts, expiration}], page, has_additional}. `end_ts`/`expiration` appear whenever the tag's
  lifetime has an end: on live tags with a future expiry (`expires`) too, which
  onlyActiveTags keeps; without onlyActiveTags, deleted tags come back with a past end_ts.
- `DELETE /api/v1/repository/{ns}/{repo}/tag/{tag}` (deleteFullTag) -> 204; needs a Bearer
  OAuth token with repo:write (401 without one, 403 with a read-only one); 404 when unknown.
  The deleted tag is kept as history (with end_ts) unless `skipRecoveryPeriod=true`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes._router import Answer, Call, FakeApi, bearer

BASE_URL = "https://quay.fake.test"
S = "quay/"


@dataclass
class FakeQuay(FakeApi):
    # repository "ns/name" -> tag -> (digest, start_ts)
    repos: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    history: list[tuple[str, str, bool]] = field(default_factory=list)  # (repo, tag, recoverable)
    tokens: dict[str, bool] = field(default_factory=lambda: {"quay-rw": True, "quay-ro": False})
    expires: dict[tuple[str, str], int] = field(default_factory=dict)  # (repo, tag) -> end_ts
    dead: dict[str, list[tuple[str, str, int, int]]] = field(default_factory=dict)
    now: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        repo = r"/api/v1/repository/(?P<ns>[^/]+)/(?P<name>[^/]+)/tag"
        self.route("GET", repo, self._list, S + "tags_list.json")
        self.route("DELETE", repo + r"/(?P<tag>[^/]+)", self._delete, S + "tag_delete.json")

    def _repo(self, call: Call) -> dict[str, tuple[str, int]] | None:
        assert call.match is not None
        return self.repos.get(f"{call.match['ns']}/{call.match['name']}")

    def _list(self, call: Call) -> Answer:
        tags = self._repo(call)
        if tags is None:
            return 404, {}, {"error_message": "Not Found"}
        assert call.match is not None
        repo = f"{call.match['ns']}/{call.match['name']}"
        limit = min(max(1, int(call.query.get("limit", "50"))), 100)
        page = max(1, int(call.query.get("page", "1")))
        rows = [
            (name, digest, start, self.expires.get((repo, name)))
            for name, (digest, start) in sorted(tags.items())
        ]
        active = call.query.get("onlyActiveTags", "").lower() in ("true", "1")
        now = self.now()
        rows = [row for row in rows if row[3] is None or row[3] > now]  # expired: not alive
        if not active:
            rows += self.dead.get(repo, [])
        if "specificTag" in call.query:
            rows = [row for row in rows if row[0] == call.query["specificTag"]]
        chunk = rows[(page - 1) * limit : page * limit]
        more = page * limit < len(rows)
        return (
            200,
            {},
            {"tags": [tag_dict(*row) for row in chunk], "page": page, "has_additional": more},
        )

    def _delete(self, call: Call) -> Answer:
        token = bearer(call)
        if token not in self.tokens:
            return 401, {}, {"error_message": "Session required"}
        if not self.tokens[token or ""]:
            return 403, {}, {"error_message": "Unauthorized access"}
        tags = self._repo(call)
        assert call.match is not None
        if tags is None or call.match["tag"] not in tags:
            return 404, {}, {"error_message": "Not Found"}
        repo, tag = f"{call.match['ns']}/{call.match['name']}", call.match["tag"]
        digest, start = tags.pop(tag)
        recoverable = call.query.get("skipRecoveryPeriod") != "true"
        self.history.append((repo, tag, recoverable))
        self.dead.setdefault(repo, []).append((tag, digest, start, int(self.now())))
        return 204, {}, None


def _stamp(ts: int) -> str:
    # Quay's format_date: RFC 2822, e.g. "Mon, 06 May 2024 12:53:20 -0000"
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S -0000")


def tag_dict(name: str, digest: str, start: int, end: int | None) -> dict[str, Any]:
    """One `_tag_dict` of quay/quay endpoints/api/tag.py."""
    item: dict[str, Any] = {"name": name, "reversion": False}
    if start > 0:
        item["start_ts"] = start
    if end is not None:
        item["end_ts"] = end
    item.update(manifest_digest=digest, is_manifest_list=False, size=1234)
    if start > 0:
        item["last_modified"] = _stamp(start)
    if end is not None:
        item["expiration"] = _stamp(end)
    return item
