"""A base for backends whose listing and deletion go through a native API.

The registry side — reading manifests for the digest graph, referrers, config-blob times — is
the plain Docker Registry API, served by the `default` backend; a native backend composes one
(created on first use, so a run that only lists never opens a registry connection) and
overrides what its API does better.
"""

from __future__ import annotations

import threading
from datetime import datetime

from ci_env.registries import _native_http
from ci_env.registries.base import Backend, BackendOptions, Image, Manifest


class NativeBackend(Backend):
    """Registry-side calls go to the Docker Registry API backend of the same host."""

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        # `options` is also the NativeOption ClassVar of Backend; keep a typed handle.
        self._opts: BackendOptions = options
        self._registry_side: Backend | None = None
        self._registry_lock = threading.Lock()

    def registry_host(self) -> str:
        """The host serving the Docker Registry API (Artifactory/Docker Hub may differ)."""
        return self.registry

    @property
    def distribution(self) -> Backend:
        with self._registry_lock:
            if self._registry_side is None:
                self._registry_side = _native_http.distribution(self.registry_host(), self._opts)
            return self._registry_side

    def manifest(self, repository: str, digest: str) -> Manifest:
        return self.distribution.manifest(repository, digest)

    def referrers(self, repository: str, digest: str) -> list[str]:
        return self.distribution.referrers(repository, digest)

    def image_time(self, repository: str, image: Image) -> datetime | None:
        if image.time is not None:
            return image.time
        return self.distribution.image_time(repository, image)

    def resolve(self, repository: str, tag: str) -> str | None:
        return self.distribution.resolve(repository, tag)

    def close(self) -> None:
        if self._registry_side is not None:
            self._registry_side.close()
