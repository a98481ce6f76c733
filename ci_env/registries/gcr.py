"""`gcr`: Google Container Registry (gcr.io, *.gcr.io, container.cloud.google.com).

Docker Registry API with two Google extensions (cloud.google.com/container-registry/docs):
`tags/list` also returns a `manifest` map `{digest: {tag[], mediaType, timeCreatedMs,
timeUploadedMs}}` — digests, untagged images and push times in one call — and
`DELETE manifests/<tag>` is a pure untag (202). Deleting a digest that still has tags answers
400 GOOGLE_MANIFEST_DANGLING_TAG, so `delete` removes the tags first, then the digest.
Container Registry was shut down on 2025-03-18: gcr.io is served by Artifact Registry, so
permissions are Artifact Registry roles (no longer Cloud Storage ones), and refusals say so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.registries.base import Description, Image
from ci_env.registries.default import DistributionBackend

DANGLING_TAG = "GOOGLE_MANIFEST_DANGLING_TAG"
ROLES_HINT = (
    "gcr.io and *-docker.pkg.dev are Artifact Registry (Container Registry was shut down on "
    "2025-03-18): the service account needs roles/artifactregistry.reader to list and "
    "roles/artifactregistry.repoAdmin on the repository to delete (Storage roles no longer apply)"
)
T = TypeVar("T")


def _millis(value: Any) -> datetime | None:
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis > 0 else None


def images_from_manifest_map(entries: dict[str, Any]) -> list[Image]:
    """Images from GCR's `manifest` map (untagged ones included)."""
    found = []
    for digest, info in sorted(entries.items()):
        if not isinstance(info, dict):
            continue
        found.append(
            Image(
                digest=digest,
                tags=tuple(sorted(str(tag) for tag in info.get("tag") or [])),
                pushed=_millis(info.get("timeUploadedMs")),
                created=_millis(info.get("timeCreatedMs")),
                media_type=str(info.get("mediaType") or ""),
            )
        )
    return found


class GcrBackend(DistributionBackend):
    kind: ClassVar[str] = "gcr"
    description: ClassVar[Description] = Description(
        title="Google Container Registry",
        auth="Docker config credentials (oauth2accesstoken, _json_key, _json_key_base64)",
        listing="GET /v2/<name>/tags/list with Google's `manifest` map (digests and times)",
        untag="DELETE /v2/<name>/manifests/<tag> (a pure untag on Google registries)",
        delete=(
            "DELETE /v2/<name>/manifests/<digest>; tags still on it are removed first "
            "(GOOGLE_MANIFEST_DANGLING_TAG)"
        ),
        cleanup_credentials="roles/artifactregistry.repoAdmin (gcr.io is Artifact Registry now)",
        limitations=(
            "Container Registry was shut down on 2025-03-18; gcr.io repositories live in "
            "Artifact Registry (gcr.io domain support)",
        ),
    )
    host_patterns: ClassVar[tuple[str, ...]] = (
        r"gcr\.io",
        r".*\.gcr\.io",
        r"container\.cloud\.google\.com",
    )
    lists_untagged: ClassVar[bool] = True
    lists_natively: ClassVar[bool] = True

    def _manifest_map(self, repository: str) -> dict[str, Any] | None:
        merged: dict[str, Any] = {}
        try:
            for page in self.client.pages(
                f"/v2/{repository}/tags/list", repository=repository, what=f"tags of {repository}"
            ):
                entries = page.get("manifest")
                if not isinstance(entries, dict):
                    return None
                merged.update(entries)
        except NotFoundError:
            return {}
        return merged

    def list_images(self, repository: str) -> list[Image]:
        entries = _roles(lambda: self._manifest_map(repository))
        if entries is None:  # not a Google registry after all: resolve tag by tag
            return super().list_images(repository)
        return images_from_manifest_map(entries)

    def untag(self, repository: str, tag: str, digest: str) -> str:
        return _roles(lambda: super(GcrBackend, self).untag(repository, tag, digest))

    def delete(self, repository: str, digest: str) -> str:
        return _roles(lambda: self._delete(repository, digest))

    def _delete(self, repository: str, digest: str) -> str:
        try:
            return super().delete(repository, digest)
        except RegistryError as error:
            if error.code != DANGLING_TAG:
                raise
        entries = self._manifest_map(repository) or {}
        for tag in (entries.get(digest) or {}).get("tag") or []:
            try:
                self.client.delete_manifest(repository, str(tag))
            except NotFoundError:
                pass
        super().delete(repository, digest)
        return "DELETE /v2 manifest by tag, then by digest"


def _roles(action: Callable[[], T]) -> T:
    """A refusal names the Artifact Registry roles instead of generic registry advice."""
    try:
        return action()
    except AuthError as error:
        raise AuthError(error.message, ROLES_HINT) from None


BACKEND = GcrBackend
