"""A fake of the Quay API v1 tag endpoints for the `quay` backend.

Follows the Red Hat Quay API reference, chapter "tag"
(https://docs.redhat.com/en/documentation/red_hat_quay/3/html/red_hat_quay_api_reference/tag)
and "Viewing and modifying tags" (use_red_hat_quay):
- `GET /api/v1/repository/{ns}/{repo}/tag/?onlyActiveTags&limit&page&specificTag` ->
  {tags: [{name, manifest_digest, is_manifest_list, size, start_ts, last_modified}], page,
  has_additional}; without onlyActiveTags, expired history entries carry `end_ts`.
- `DELETE /api/v1/repository/{ns}/{repo}/tag/{tag}` (deleteFullTag) -> 204; needs a Bearer
  OAuth token with repo:write (401 without one, 403 with a read-only one); 404 when unknown.
  The deleted tag is kept as history (with end_ts) unless `skipRecoveryPeriod=true`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes._router import Answer, Call, FakeApi, bearer

BASE_URL = "https://quay.fake.test"


@dataclass
class FakeQuay(FakeApi):
    # repository "ns/name" -> tag -> (digest, start_ts)
    repos: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    history: list[tuple[str, str, bool]] = field(default_factory=list)  # (repo, tag, recoverable)
    tokens: dict[str, bool] = field(default_factory=lambda: {"quay-rw": True, "quay-ro": False})

    def __post_init__(self) -> None:
        repo = r"/api/v1/repository/(?P<ns>[^/]+)/(?P<name>[^/]+)/tag"
        self.route("GET", repo, self._list)
        self.route("DELETE", repo + r"/(?P<tag>[^/]+)", self._delete)

    def _repo(self, call: Call) -> dict[str, tuple[str, int]] | None:
        assert call.match is not None
        return self.repos.get(f"{call.match['ns']}/{call.match['name']}")

    def _list(self, call: Call) -> Answer:
        tags = self._repo(call)
        if tags is None:
            return 404, {}, {"error_message": "Not Found"}
        limit = min(int(call.query.get("limit", "50")), 100)
        page = int(call.query.get("page", "1"))
        names = sorted(tags)
        if "specificTag" in call.query:
            names = [name for name in names if name == call.query["specificTag"]]
        chunk = names[(page - 1) * limit : page * limit]
        items = [
            {
                "name": name,
                "manifest_digest": tags[name][0],
                "is_manifest_list": False,
                "size": 1234,
                "start_ts": tags[name][1],
                "reversion": False,
            }
            for name in chunk
        ]
        more = page * limit < len(names)
        return 200, {}, {"tags": items, "page": page, "has_additional": more}

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
        del tags[call.match["tag"]]
        recoverable = call.query.get("skipRecoveryPeriod") != "true"
        self.history.append(
            (f"{call.match['ns']}/{call.match['name']}", call.match["tag"], recoverable)
        )
        return 204, {}, None
