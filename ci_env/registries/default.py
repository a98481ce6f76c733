"""`default`: any registry speaking the Docker Registry HTTP API v2 / OCI distribution-spec.

`DistributionBackend` is also the base of every native backend: override `native_untag` (a
pure untag through the registry's own API; declare `untags_natively`), `list_images` (a native
listing with push times; declare `lists_natively`), or `delete` — the rest (manifests,
referrers, config-blob times, the untag ladder, auth, retries) is inherited. Subclasses set
`try_delete_tag = False` where `DELETE manifests/<tag>` is known not to be a pure untag.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import ClassVar

from ci_env.errors import NotFoundError, UnsupportedError
from ci_env.oci import OCI_MANIFEST, Descriptor, Manifest
from ci_env.options import BackendOptions
from ci_env.registries.base import Backend, Description, Image
from ci_env.registry.client import RegistryClient
from ci_env.registry.untag import UntagLadder, untag_by_throwaway

logger = logging.getLogger(__name__)

IMPOSSIBLE_DIGEST = "sha256:" + "0" * 64  # the dry delete's target: no manifest hashes to it


class DistributionBackend(Backend):
    """The Docker Registry API backend; thread-safe; one instance per registry and run."""

    kind: ClassVar[str] = "default"
    description: ClassVar[Description] = Description(
        title="Docker Registry API (default)",
        auth="Docker config credentials; Basic or Bearer token (scope from the challenge)",
        listing=(
            "GET /v2/<name>/tags/list (Link pages), each tag resolved with one GET of its "
            "manifest (body hashed)"
        ),
        untag=(
            "DELETE /v2/<name>/manifests/<tag>; where refused (distribution 2.x), a unique "
            "throwaway manifest is pushed to the tag and deleted by digest"
        ),
        delete="DELETE /v2/<name>/manifests/<digest> (removes every tag on it)",
        cleanup_credentials="pull, push and delete on the repository (delete must be enabled)",
        limitations=(
            "no push time in the API: image age comes from the config blob's `created`",
            "deleting manifests leaves blobs until the registry's garbage collection runs",
            "untagged manifests are not listed (the API lists tags only)",
        ),
    )
    host_patterns: ClassVar[tuple[str, ...]] = ()
    # Is `DELETE /v2/<name>/manifests/<tag>` a pure untag on this kind (rung 1 of the ladder)?
    try_delete_tag: ClassVar[bool] = True
    # Declared by kinds that override `native_untag` (rung 2 of the ladder) ...
    untags_natively: ClassVar[bool] = False
    # ... and by kinds whose `list_images` is a native listing bringing digests with the
    # names (`tag_names` then offers nothing cheaper).
    lists_natively: ClassVar[bool] = False
    # Parallel manifest GETs while resolving tags to digests.
    list_workers: ClassVar[int] = 8

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        self.client = RegistryClient(registry, options)
        self._ladder: UntagLadder | None = None
        self._ladder_lock = threading.Lock()

    # --- hooks for native backends ------------------------------------------------------

    def native_untag(self, repository: str, tag: str) -> str:
        """Remove only `tag` through a native API; returns the method. Default: none (a kind
        that overrides this declares `untags_natively = True`)."""
        raise UnsupportedError(f"{self.description.title} has no native untag")

    # --- listing ------------------------------------------------------------------------

    def list_repositories(self, prefix: str) -> list[str]:
        """Repositories under `prefix` from `/v2/_catalog` (needs catalog permission)."""
        base = prefix.rstrip("/")
        names = self.client.catalog(base + "/" if base else "")
        return [name for name in names if not base or name.startswith(base + "/")]

    def list_tags(self, repository: str) -> list[str]:
        """Tags of `repository`; [] when the repository does not exist."""
        try:
            return self.client.tags(repository)
        except NotFoundError:
            return []

    def tag_names(self, repository: str) -> list[str] | None:
        if self.lists_natively:
            return None  # digests come with the names
        return self.list_tags(repository)

    def tag_name_pages(self, repository: str) -> Iterator[list[str]] | None:
        if self.lists_natively:
            return None
        return self._tag_pages(repository)

    def _tag_pages(self, repository: str) -> Iterator[list[str]]:
        try:
            yield from self.client.tag_pages(repository)
        except NotFoundError:
            return  # no such repository (or gone while listing): nothing more to list

    def list_images(self, repository: str) -> list[Image]:
        return self.images_of(repository, self.list_tags(repository))

    def images_of(self, repository: str, tags: Sequence[str]) -> list[Image]:
        """Each tag resolved by one GET of its manifest: the body is hashed (a header never
        decides), and the client keeps it, so the graph walk and the time read of that digest
        cost no second request."""
        if len(tags) <= 1:
            return group_by_digest(
                [(tag, self._resolve_by_content(repository, tag)) for tag in tags]
            )
        workers = max(1, min(self.list_workers, len(tags)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(
                pool.map(lambda tag: (tag, self._resolve_by_content(repository, tag)), tags)
            )
        return group_by_digest(found)

    def _resolve_by_content(self, repository: str, tag: str) -> Descriptor | None:
        try:
            return self.client.get(repository, tag)[1]
        except NotFoundError:
            return None  # deleted while listing

    # --- reading ------------------------------------------------------------------------

    def manifest(self, repository: str, digest: str) -> Manifest:
        return self.client.manifest(repository, digest)

    def resolve(self, repository: str, tag: str) -> str | None:
        found = self.client.head(repository, tag)
        return found.digest if found else None

    def referrers(self, repository: str, digest: str) -> list[str]:
        return self.client.referrers(repository, digest)

    def image_time(self, repository: str, image: Image) -> datetime | None:
        return image.time or self.client.image_created(repository, image.digest)

    def image_revision(self, repository: str, image: Image) -> str | None:
        return image.revision or self.client.image_revision(repository, image.digest)

    # --- probing ------------------------------------------------------------------------

    def registry_api(self) -> RegistryClient:
        return self.client

    def dry_delete(self, repository: str) -> str:
        """`DELETE` of a digest that cannot exist: 404 MANIFEST_UNKNOWN means deletes are
        allowed, 401/403 denied and 405 disabled (raised), and nothing is touched."""
        try:
            self.client.delete_manifest(repository, IMPOSSIBLE_DIGEST)
        except NotFoundError:
            return "DELETE by digest allowed (404 for a digest that does not exist)"
        return "DELETE by digest allowed"

    # --- deleting -----------------------------------------------------------------------

    @property
    def ladder(self) -> UntagLadder:
        with self._ladder_lock:
            if self._ladder is None:
                native = self.native_untag if self.untags_natively else None
                self._ladder = UntagLadder(self.client, native, try_delete_tag=self.try_delete_tag)
            return self._ladder

    def untag(self, repository: str, tag: str, digest: str) -> str:
        return self.ladder.untag(repository, tag, digest)

    def delete(self, repository: str, digest: str) -> str:
        """DELETE by digest; NotFoundError (404 MANIFEST_UNKNOWN) means already gone."""
        self.client.delete_manifest(repository, digest)
        return "DELETE /v2 manifest by digest"

    def clear_dangling(self, repository: str, tags: Sequence[str]) -> list[str]:
        """distribution deletes a manifest before it untags it: a registry stopped in between
        leaves the tag listed but unreadable, and the retried delete answers 404. Such a tag
        goes the throwaway way (moved to a throwaway manifest that is then deleted)."""
        listed = set(self.list_tags(repository))
        cleared = []
        for tag in tags:
            if tag in listed and self.client.head(repository, tag) is None:
                untag_by_throwaway(self.client, repository, tag, OCI_MANIFEST)
                cleared.append(tag)
        return cleared

    def close(self) -> None:
        self.client.close()


def group_by_digest(found: list[tuple[str, Descriptor | None]]) -> list[Image]:
    """Images from (tag, descriptor) pairs; tags that vanished while listing are dropped."""
    tags: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    for tag, descriptor in found:
        if descriptor is None:
            continue
        tags.setdefault(descriptor.digest, []).append(tag)
        types[descriptor.digest] = descriptor.media_type
    return [
        Image(digest=digest, tags=tuple(sorted(names)), media_type=types[digest])
        for digest, names in sorted(tags.items())
    ]


BACKEND = DistributionBackend
