"""Quay (quay.io and self-hosted Red Hat Quay): list and untag through the Quay API.

Quay API v1 (Red Hat Quay API reference, "tag" chapter): `GET
/api/v1/repository/{ns}/{repo}/tag/?onlyActiveTags=true&limit=100&page=N` -> {tags: [{name,
manifest_digest, is_manifest_list, start_ts, last_modified}], has_additional}; one tag with
`specificTag=`; untag `DELETE /api/v1/repository/{ns}/{repo}/tag/{tag}` -> 204 (deleteFullTag,
needs repo:write). A deleted tag stays recoverable for the namespace's time-machine period;
`skipRecoveryPeriod=true` skips that only when --repo-quay-skip-recovery-period asks.
A tag's `end_ts` is its expiry, past or future (quay/quay `endpoints/api/tag.py` `_tag_dict`):
a tag set to expire later is alive and listed by onlyActiveTags, so only a past end_ts
(history, from a Quay that ignores onlyActiveTags) drops a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from ci_env import timeparse
from ci_env.errors import AuthError, NotFoundError
from ci_env.options import BackendOptions
from ci_env.registries import _native_http
from ci_env.registries._native import NativeBackend
from ci_env.registries._native_http import ApiClient, Hints, TagRow, segment
from ci_env.registries.base import Description, Image, NativeOption
from ci_env.settings import flag

_AUTH_HINT = (
    "set --repo-quay-token (CIENV_REPO_QUAY_TOKEN) to an OAuth application token of the "
    "repository's organization"
)
_DENIED_HINT = (
    "the OAuth token needs the 'Read/Write to any accessible repositories' permission "
    "(repo:write) on this repository"
)


class QuayBackend(NativeBackend):
    kind = "quay"
    host_patterns = (r"quay\.io", r"quay\..*\.com")
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption("quay-token", "Quay OAuth application token (repo:read, repo:write)"),
        NativeOption(
            "quay-skip-recovery-period",
            "delete tags for good instead of keeping them recoverable (true/false)",
            secret=False,
        ),
    )
    description = Description(
        title="Quay",
        auth="OAuth application token (Bearer)",
        listing="Quay API active tags (manifest_digest, start_ts)",
        untag="Quay API tag delete (recoverable unless skipRecoveryPeriod is asked for)",
        delete="Quay API: delete every tag of the digest",
        cleanup_credentials="--repo-quay-token (repo:write)",
        oci_artifacts="not supported",
        limitations=("deleted tags stay recoverable for the namespace's time-machine period",),
    )

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        self._token = _native_http.native(options, "quay-token", secret=True)
        self._skip_recovery = flag(
            options.native.get("quay-skip-recovery-period"), "CIENV_REPO_QUAY_SKIP_RECOVERY_PERIOD"
        )
        self.now: Callable[[], float] = time.time
        base = _native_http.api_base("quay", registry, options)
        self.api = ApiClient(
            base.rstrip("/") + "/api/v1",
            options,
            service="Quay API",
            hints=Hints(auth=_AUTH_HINT, denied=_DENIED_HINT),
            authorization=lambda: f"Bearer {self._token}" if self._token else None,
        )

    def _tags_path(self, repository: str) -> str:
        # The API takes the full repository path with its slashes (namespace/name).
        return "/repository/" + "/".join(segment(part) for part in repository.split("/")) + "/tag/"

    def _rows(self, repository: str, **extra: str) -> list[TagRow]:
        rows: list[TagRow] = []
        page = 1
        while True:
            params = {"onlyActiveTags": "true", "limit": "100", "page": str(page), **extra}
            body = self.api.json(
                "GET", self._tags_path(repository), f"tags of {repository}", params=params
            )
            rows.extend(
                TagRow(
                    str(item.get("name") or ""),
                    str(item.get("manifest_digest") or ""),
                    timeparse.parse_time(item.get("start_ts") or item.get("last_modified")),
                )
                for item in body.get("tags") or []
                if self._alive(item)
            )
            if not body.get("has_additional"):
                return rows
            page += 1

    def _alive(self, item: dict[str, Any]) -> bool:
        end = item.get("end_ts")
        return not isinstance(end, int | float) or end > self.now()

    def list_images(self, repository: str) -> list[Image]:
        return self.remember(repository, _native_http.group_tags(self._rows(repository)))

    def resolve(self, repository: str, tag: str) -> str | None:
        try:
            rows = self._rows(repository, specificTag=tag)
        except NotFoundError:
            return None
        return next((row.digest for row in rows if row.tag == tag), None)

    def untag(self, repository: str, tag: str, digest: str) -> str:
        if not self._token:
            raise AuthError("Quay deletes tags only through its API", _AUTH_HINT)
        self.check_still_at(repository, tag, digest)
        params = {"skipRecoveryPeriod": "true"} if self._skip_recovery else None
        self.api.call(
            "DELETE",
            self._tags_path(repository) + segment(tag),
            f"deleting tag {tag} of {repository}",
            params=params,
        )
        return "Quay API tag delete" + (" (no recovery period)" if self._skip_recovery else "")

    def delete(self, repository: str, digest: str) -> str:
        self.delete_every_tag(repository, digest)
        # Quay garbage-collects a manifest once no tag (or recoverable tag) keeps it.
        return "Quay API tag delete (every tag of the digest)"

    def close(self) -> None:
        self.api.close()
        super().close()


BACKEND = QuayBackend
