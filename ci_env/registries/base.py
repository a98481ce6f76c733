"""The registry backend interface: one ABC, its value types, and the registration helpers.

A backend is one module in `ci_env/registries/` that defines a `Backend` subclass and exposes it
as `BACKEND`; registering it is one line in `ci_env/registries/__init__.py`. Cleanup, the digest
graph, reports and `ci-env detect` only ever talk to this interface.

All values crossing the interface are frozen dataclasses parsed at the edge (inside the
backend). Backends raise only `ci_env.errors` types: `AuthError` stops a run, `NotFoundError`
on a delete means "already gone", `UnsupportedError` means "try the next method".
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from ci_env.errors import CiEnvError, NotFoundError, RegistryError


@dataclass(frozen=True)
class NativeOption:
    """A credential or setting a backend needs, declared by the backend itself.

    `name="github-token"` becomes the CLI option `--repo-github-token` and is read from
    `CIENV_REPO_GITHUB_TOKEN`, then `WERF_REPO_GITHUB_TOKEN`, then each of `fallbacks`.
    Backends receive the resolved value in `BackendOptions.native["github-token"]`.
    """

    name: str
    help: str
    secret: bool = True
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Description:
    """What `ci-env detect` prints for a kind, and the README's per-registry table."""

    title: str
    auth: str
    listing: str
    untag: str
    delete: str
    cleanup_credentials: str
    limitations: tuple[str, ...] = ()
    login: str = "ok"
    oci_artifacts: str = "ok"
    cleanup: str = "ok"


@dataclass(frozen=True)
class BackendOptions:
    """Everything a backend may know; built by the settings loader, never from os.environ here."""

    docker_config: str | None = None  # directory holding config.json (registry credentials)
    insecure_registries: frozenset[str] = frozenset()  # hosts where plain http is allowed
    timeout: float = 30.0  # seconds per request
    max_attempts: int = 5  # per request, retries included
    max_retry_seconds: float = 120.0  # total time one request may spend retrying
    max_requests_per_second: float | None = None  # global limiter; None = backend default
    native: Mapping[str, str] = field(default_factory=dict)  # NativeOption values by name
    api_urls: Mapping[str, str] = field(default_factory=dict)  # e.g. github/gitlab API base URLs
    user_agent: str = "ci-env"
    # The content cache (ci_env/registry/cache.py): its directory, None = in memory only.
    cache_dir: str | None = None
    cache_max_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class Image:
    """One manifest digest in a repository with every tag that points at it.

    `pushed` is the registry's push time where its API has one; `created` the build time from
    the config blob where the backend read it. Untagged images have `tags == ()`. `revision`
    is the `org.opencontainers.image.revision` label or annotation, where it was read.
    """

    digest: str
    tags: tuple[str, ...] = ()
    pushed: datetime | None = None
    created: datetime | None = None
    media_type: str = ""
    revision: str | None = None

    @property
    def time(self) -> datetime | None:
        return self.pushed or self.created


@dataclass(frozen=True)
class Manifest:
    """What the digest graph needs to know about one manifest."""

    digest: str
    media_type: str
    children: tuple[str, ...] = ()  # manifests an index/list references
    subject: str | None = None  # OCI `subject` digest (this manifest is a referrer)
    config_digest: str | None = None
    artifact_type: str = ""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


class OpKind(enum.StrEnum):
    UNTAG = "untag"  # remove one tag, leave the digest and its other tags
    DELETE = "delete"  # delete the manifest by digest (and every tag on it)


@dataclass(frozen=True)
class Operation:
    kind: OpKind
    digest: str
    tag: str | None = None  # required for UNTAG


@dataclass(frozen=True)
class OpResult:
    op: Operation
    error: CiEnvError | None = None
    already_gone: bool = False
    method: str = ""  # e.g. "DELETE /v2 manifest by tag", "throwaway manifest", "Hub API"

    @property
    def ok(self) -> bool:
        return self.error is None


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)


class Backend(ABC):
    """A registry kind. One instance serves one registry host for one run; thread-safe."""

    kind: ClassVar[str]
    description: ClassVar[Description]
    # Regexes (re.fullmatch, case-insensitive) on the registry host without port.
    host_patterns: ClassVar[tuple[str, ...]] = ()
    native_options: ClassVar[tuple[NativeOption, ...]] = ()
    # True when listing returns untagged images (so `untagged: delete` can act).
    lists_untagged: ClassVar[bool] = False
    # True when deleting an index also deletes its children no other artifact references
    # (Harbor): an index holding a needed digest must then be untagged, never deleted.
    delete_cascades: ClassVar[bool] = False

    def __init__(self, registry: str, options: BackendOptions) -> None:
        self.registry = registry  # host[:port] as in the reference (docker.io normalised)
        self.options = options

    @classmethod
    def probe(cls, registry: str, options: BackendOptions) -> bool:
        """For an unknown host with `--probe`: does the live registry look like this kind?"""
        return False

    def list_repositories(self, prefix: str) -> list[str]:
        """Repositories under `prefix` (for `REPO/*`). Default: not possible."""
        raise CiEnvError(
            f"{self.description.title} cannot list repositories",
            "name each repository with --repo instead of a /* pattern",
        )

    @abstractmethod
    def list_images(self, repository: str) -> list[Image]:
        """Every tag of `repository` grouped by digest (plus untagged images if listed)."""

    def tag_names(self, repository: str) -> list[str] | None:
        """Tag names alone where `list_images` costs a request per tag (`images_of` then
        resolves them); None where it costs no more. A repository in which no tag could go by
        its name is then planned without resolving any digest."""
        return None

    def images_of(self, repository: str, tags: Sequence[str]) -> list[Image]:
        """`list_images` for tags `tag_names` listed. Default: list again (for backends that
        do not offer `tag_names`)."""
        return self.list_images(repository)

    @abstractmethod
    def manifest(self, repository: str, digest: str) -> Manifest:
        """Read one manifest by digest. NotFoundError when it is gone."""

    def referrers(self, repository: str, digest: str) -> list[str]:
        """Digests of manifests whose `subject` is `digest` (OCI referrers API). Default none.

        Fallback tags (`sha256-<hex>`, cosign `.sig/.att/.sbom`) are tags and come through
        `list_images`; the digest graph attaches them to their subject.
        """
        return []

    def image_time(self, repository: str, image: Image) -> datetime | None:
        """A time for an image whose listing carried none (e.g. from the config blob)."""
        return image.time

    def image_revision(self, repository: str, image: Image) -> str | None:
        """The commit the image says it was built from (`org.opencontainers.image.revision`
        of its index, manifest or config labels), where the registry lets us read it."""
        return image.revision

    @abstractmethod
    def resolve(self, repository: str, tag: str) -> str | None:
        """The digest `tag` points at now, or None when the tag does not exist."""

    def content_digest(self, repository: str, tag: str) -> str | None:
        """The digest of the manifest `tag` serves, hashed from its body where the digest
        otherwise comes from a header; None when the tag is gone. Raises when the registry's
        announced digest and the body disagree. Default: `resolve` (native listings)."""
        return self.resolve(repository, tag)

    def check_still_at(self, repository: str, tag: str, digest: str) -> None:
        """Before an untag: see `ensure_still_at`."""
        ensure_still_at(repository, tag, digest, self.resolve(repository, tag))

    @abstractmethod
    def untag(self, repository: str, tag: str, digest: str) -> str:
        """Remove `tag` only; other tags on `digest` stay. Returns the method used."""

    @abstractmethod
    def delete(self, repository: str, digest: str) -> str:
        """Delete the manifest `digest` (every tag on it goes). NotFoundError = already gone."""

    def apply(self, repository: str, ops: Sequence[Operation]) -> Iterator[OpResult]:
        """Carry out operations; backends with a batch API override this. AuthError propagates."""
        for op in ops:
            yield self._apply_one(repository, op)

    def _apply_one(self, repository: str, op: Operation) -> OpResult:
        try:
            if op.kind is OpKind.UNTAG:
                assert op.tag is not None
                method = self.untag(repository, op.tag, op.digest)
            else:
                method = self.delete(repository, op.digest)
        except NotFoundError:
            return OpResult(op, already_gone=True)
        except CiEnvError as error:
            if error.exit_code == 3:
                raise
            return OpResult(op, error=error)
        return OpResult(op, method=method)

    def clear_dangling(self, repository: str, tags: Sequence[str]) -> list[str]:
        """After deletes that answered "already gone": remove those planned `tags` that the
        registry still lists without a manifest behind them; returns the tags removed.
        Default: nothing (registries that delete tags and manifests together)."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release pooled connections."""


def ensure_still_at(repository: str, tag: str, planned: str, current: str | None) -> None:
    """NotFoundError when the tag is gone (done); RegistryError when it points elsewhere than
    planned: it was pushed again since the plan was made, someone's new image, left alone."""
    if current is None:
        raise NotFoundError(f"tag {repository}:{tag} is already gone", status=404)
    if current != planned:
        raise RegistryError(
            f"tag {repository}:{tag} moved: it now points at {current}, not {planned}",
            "it was pushed again after the plan was made; left alone — run cleanup again",
        )


def first_pattern_match(patterns: Iterable[str], host: str) -> bool:
    bare = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
    return any(re.fullmatch(pattern, bare, re.IGNORECASE) for pattern in patterns)
