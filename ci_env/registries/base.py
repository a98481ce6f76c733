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
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ci_env.errors import AuthError, CiEnvError, NotFoundError, UsageError
from ci_env.oci import Manifest, ensure_still_at
from ci_env.options import BackendOptions
from ci_env.reference import hostname
from ci_env.registry.client import RegistryClient


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
class V2Answer:
    """A registry's anonymous `GET /v2/` answer, as `--probe` shows it to each kind."""

    headers: Mapping[str, str]  # case-insensitive, as the response has them
    realm: str = ""  # the path of the Bearer challenge's realm ("" without one)


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
    # Operations one `apply` call takes: more than 1 only where `apply` is a batch API (ECR).
    batch_size: ClassVar[int] = 1

    def __init__(self, registry: str, options: BackendOptions) -> None:
        self.registry = registry  # host[:port] as in the reference (docker.io normalised)
        self.options = options

    @classmethod
    def recognize(cls, answer: V2Answer) -> str | None:
        """For an unknown host with `--probe`: the evidence (for `ci-env detect`'s "why") that
        the anonymous `GET /v2/` answer is this kind's; None when it is not. Default: None."""
        return None

    @classmethod
    def probe(cls, registry: str, options: BackendOptions) -> str | None:
        """Where no kind recognized the `/v2/` answer: ask the live registry something of this
        kind's own; the evidence, or None. Default: None (no request)."""
        return None

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

    def tag_name_pages(self, repository: str) -> Iterator[list[str]] | None:
        """`tag_names` a listing page at a time, each name once, so that planning resolves a
        page's tags while the next page is on its way. Default: all names as one page."""
        names = self.tag_names(repository)
        return None if names is None else iter([names])

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
        """Carry out operations; backends with a batch API override this and declare their
        `batch_size`. AuthError propagates."""
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
        except AuthError:
            raise  # stops the run
        except CiEnvError as error:
            return OpResult(op, error=error)
        return OpResult(op, method=method)

    def clear_dangling(self, repository: str, tags: Sequence[str]) -> list[str]:
        """After deletes that answered "already gone": remove those planned `tags` that the
        registry still lists without a manifest behind them; returns the tags removed.
        Default: nothing (registries that delete tags and manifests together)."""
        return []

    # --- what `ci-env probe` checks -------------------------------------------------------

    def registry_api(self) -> RegistryClient:
        """The Docker Registry API of this host, for `ci-env probe` (authenticate, push
        scratch manifests). Default: a client of its own, credentials from the Docker config."""
        return RegistryClient(self.registry, self.options)

    def dry_delete(self, repository: str) -> str:
        """What a delete here is allowed to do, found without deleting anything. Default: not
        checked (a native delete API has no harmless form)."""
        return f"not checked dry: deletes go through {self.description.delete}"

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release pooled connections."""


def split_repository(repository: str, message: str, hint: str) -> tuple[str, str]:
    """(first segment, the rest) of a repository path whose kind needs both (Hub's namespace,
    a GitHub owner, an Artifactory key, an ECR Public alias); UsageError without the rest."""
    first, _, rest = repository.partition("/")
    if not rest:
        raise UsageError(message, hint)
    return first, rest


def first_pattern_match(patterns: Iterable[str], host: str) -> bool:
    return any(re.fullmatch(pattern, hostname(host), re.IGNORECASE) for pattern in patterns)
