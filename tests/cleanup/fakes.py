"""An in-memory registry Backend for the apply/planner/report tests.

It behaves like the Backend contract in `ci_env/registries/base.py`: deleting by digest removes
every tag on it, untag removes one tag, a missing digest raises NotFoundError (already gone),
`fail` makes chosen operations fail with RegistryError and `auth_fail_after` raises AuthError
after that many operations (to test "stop at once"). Thread-safe; counts calls.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.oci import OCI_INDEX, OCI_MANIFEST, Manifest
from ci_env.options import BackendOptions
from ci_env.registries.base import Backend, Description, Image


class FakeBackend(Backend):
    kind: ClassVar[str] = "fake"
    description: ClassVar[Description] = Description(
        title="fake", auth="", listing="", untag="", delete="", cleanup_credentials=""
    )
    lists_untagged: ClassVar[bool] = True

    def __init__(self, registry: str = "fake.test", options: BackendOptions | None = None):
        super().__init__(registry, options or BackendOptions())
        self.tags: dict[str, dict[str, str]] = {}  # repo -> tag -> digest
        self.manifests: dict[str, dict[str, Manifest]] = {}  # repo -> digest -> manifest
        self.times: dict[str, datetime] = {}
        self.listed_times = False  # listing carries push times (like ECR, GHCR)
        self.referrer_map: dict[str, list[str]] = {}
        self.unreadable: set[str] = set()
        self.missing: set[str] = set()  # answer 404 MANIFEST_UNKNOWN (a deleted index child)
        self.fail: set[str] = set()  # digests whose untag/delete fails
        self.auth_fail_after: int | None = None
        self.calls: Counter[str] = Counter()
        self.done: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    # --- seeding -----------------------------------------------------------------------

    def add(
        self,
        repo: str,
        digest: str,
        tags: Iterable[str] = (),
        *,
        time: datetime | None = None,
        children: Iterable[str] = (),
        subject: str | None = None,
    ) -> str:
        children = tuple(children)
        media = OCI_INDEX if children else OCI_MANIFEST
        self.manifests.setdefault(repo, {})[digest] = Manifest(digest, media, children, subject)
        for tag in tags:
            self.tags.setdefault(repo, {})[tag] = digest
        if time is not None:
            self.times[digest] = time
        if subject is not None:
            self.referrer_map.setdefault(subject, []).append(digest)
        return digest

    # --- Backend ---------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def list_images(self, repository: str) -> list[Image]:
        self._count("list")
        by_digest: dict[str, list[str]] = {}
        for tag, digest in self.tags.get(repository, {}).items():
            by_digest.setdefault(digest, []).append(tag)
        images = []
        for digest, manifest in self.manifests.get(repository, {}).items():
            when = self.times.get(digest) if self.listed_times else None
            tags = tuple(sorted(by_digest.get(digest, ())))
            images.append(Image(digest, tags, pushed=when, media_type=manifest.media_type))
        return images

    def image_time(self, repository: str, image: Image) -> datetime | None:
        self._count("time")
        return image.time or self.times.get(image.digest)

    def manifest(self, repository: str, digest: str) -> Manifest:
        self._count("manifest")
        if digest in self.unreadable:
            raise RegistryError(f"manifest {digest} unreadable", status=500)
        if digest in self.missing:  # as distribution answers for a deleted manifest
            raise NotFoundError(f"manifest {digest}: 404", status=404, code="MANIFEST_UNKNOWN")
        try:
            return self.manifests[repository][digest]
        except KeyError:
            raise NotFoundError(f"manifest {digest} not found") from None

    def referrers(self, repository: str, digest: str) -> list[str]:
        self._count("referrers")
        return list(self.referrer_map.get(digest, ()))

    def resolve(self, repository: str, tag: str) -> str | None:
        self._count("resolve")
        return self.tags.get(repository, {}).get(tag)

    def _op(self, name: str, digest: str) -> None:
        with self._lock:
            self.calls[name] += 1
            ops = self.calls["untag"] + self.calls["delete"]
        if self.auth_fail_after is not None and ops > self.auth_fail_after:
            raise AuthError("token lacks delete", "give the token delete scope")
        if digest in self.fail:
            raise RegistryError(f"deleting {digest} failed", status=500)

    def untag(self, repository: str, tag: str, digest: str) -> str:
        self._op("untag", digest)
        with self._lock:
            if self.tags.get(repository, {}).get(tag) != digest:
                raise NotFoundError(f"tag {tag} not found")
            del self.tags[repository][tag]
            self.done.append(("untag", tag))
        return "fake untag"

    def delete(self, repository: str, digest: str) -> str:
        self._op("delete", digest)
        with self._lock:
            if digest not in self.manifests.get(repository, {}):
                raise NotFoundError(f"manifest {digest} not found")
            del self.manifests[repository][digest]
            repo_tags = self.tags.get(repository, {})
            for tag in [t for t, d in repo_tags.items() if d == digest]:
                del repo_tags[tag]
            self.done.append(("delete", digest))
        return "fake delete"


def digest(name: str) -> str:
    """A readable fake digest: `sha256:` + the name's hex padded to 64 characters."""
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


class TagsOnlyBackend(FakeBackend):
    """Like the Docker Registry API: untagged manifests are not listed."""

    lists_untagged: ClassVar[bool] = False

    def list_images(self, repository: str) -> list[Image]:
        return [image for image in super().list_images(repository) if image.tags]
