"""A base for backends whose listing and deletion go through a native API.

The registry side — reading manifests for the digest graph, referrers, config-blob times — is
the plain Docker Registry API, served by the `default` backend; a native backend composes one
(created on first use, so a run that only lists never opens a registry connection) and
overrides what its API does better.
"""

from __future__ import annotations

import threading
from datetime import datetime

from ci_env.errors import NotFoundError
from ci_env.oci import Manifest
from ci_env.options import BackendOptions
from ci_env.registries import _native_http
from ci_env.registries.base import Backend, Image


class NativeBackend(Backend):
    """Registry-side calls go to the Docker Registry API backend of the same host."""

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        self._tags_by_digest: dict[tuple[str, str], tuple[str, ...]] = {}
        self._registry_side: Backend | None = None
        self._registry_lock = threading.Lock()

    def registry_host(self) -> str:
        """The host serving the Docker Registry API (Artifactory/Docker Hub may differ)."""
        return self.registry

    @property
    def distribution(self) -> Backend:
        with self._registry_lock:
            if self._registry_side is None:
                self._registry_side = _native_http.distribution(self.registry_host(), self.options)
            return self._registry_side

    def remember(self, repository: str, images: list[Image]) -> list[Image]:
        """Note each listed digest's tags, for `delete_every_tag`; returns `images`."""
        for image in images:
            self._tags_by_digest[(repository, image.digest)] = image.tags
        return images

    def delete_every_tag(self, repository: str, digest: str) -> tuple[str, ...]:
        """Untag every tag of `digest` (the way to delete an image on registries whose API
        deletes tags, not manifests); already-gone tags count as done. Returns the tags."""
        tags = self._tags_by_digest.get((repository, digest))
        if tags is None:
            self.list_images(repository)
            tags = self._tags_by_digest.get((repository, digest), ())
        for tag in tags:
            try:
                self.untag(repository, tag, digest)
            except NotFoundError:
                continue
        return tags

    def manifest(self, repository: str, digest: str) -> Manifest:
        return self.distribution.manifest(repository, digest)

    def referrers(self, repository: str, digest: str) -> list[str]:
        return self.distribution.referrers(repository, digest)

    def image_time(self, repository: str, image: Image) -> datetime | None:
        if image.time is not None:
            return image.time
        return self.distribution.image_time(repository, image)

    def image_revision(self, repository: str, image: Image) -> str | None:
        return image.revision or self.distribution.image_revision(repository, image)

    def resolve(self, repository: str, tag: str) -> str | None:
        return self.distribution.resolve(repository, tag)

    def close(self) -> None:
        if self._registry_side is not None:
            self._registry_side.close()
