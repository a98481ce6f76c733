"""Planning one repository: list, fill in times where they matter, decide, walk the graph.

All registry I/O of planning lives here, over the `Backend` interface; the decisions are made
by the pure `policy` and `graph` modules. Reads run on a small thread pool (one pooled session
per registry is shared by the backend). A needed manifest that cannot be read fails the
repository closed: its plan carries the error and no deletions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from ci_env.cleanup import policy
from ci_env.cleanup.graph import ClosedError, DigestGraph
from ci_env.cleanup.keep_policies import History
from ci_env.cleanup.plan import RepoPlan
from ci_env.cleanup.rules import Rules
from ci_env.errors import AuthError, CiEnvError, NotFoundError, RegistryError, UsageError
from ci_env.inuse.base import InUse, RepoUse
from ci_env.oci import DIGEST_MISMATCH, Manifest
from ci_env.registries.base import Backend, Image

MISSING = "MANIFEST_UNKNOWN"

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Settings:
    rules: Rules
    now: datetime
    history: History | None = None  # keep.git: origin's references and commits
    keep_orphan_referrers: bool = False
    parallel: int = 8
    in_use: InUse | None = None  # images workloads use (`ci_env.inuse`): never deleted
    skip_broken: bool = False  # --on-broken skip (policy `broken: skip`)


def map_parallel(parallel: int, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`func` over `items` on up to `parallel` threads, results in order."""
    if len(items) <= 1 or parallel <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(min(parallel, len(items)), thread_name_prefix="plan") as pool:
        return list(pool.map(func, items))


def _with_times(
    backend: Backend, repository: str, s: Settings, images: list[Image], use: RepoUse
) -> list[Image]:
    """Fill in creation times only for images whose decision depends on one."""
    missing = policy.needs_time(images, s.rules, s.history, s.now, use)
    if not missing:
        return images
    logger.debug("%s: reading times of %d images", repository, len(missing))
    times = map_parallel(s.parallel, lambda image: backend.image_time(repository, image), missing)
    found = {image.digest: when for image, when in zip(missing, times, strict=True)}
    return [
        replace(image, created=found[image.digest]) if found.get(image.digest) else image
        for image in images
    ]


def _with_revisions(
    backend: Backend, repository: str, s: Settings, images: list[Image], use: RepoUse
) -> list[Image]:
    """Read `org.opencontainers.image.revision` only for images keep.git may still keep."""
    missing = policy.needs_revision(images, s.rules, use) if s.history is not None else []
    if not missing:
        return images
    logger.debug("%s: reading revisions of %d images", repository, len(missing))
    found = map_parallel(
        s.parallel, lambda image: backend.image_revision(repository, image), missing
    )
    by_digest = {image.digest: rev for image, rev in zip(missing, found, strict=True) if rev}
    return [
        replace(image, revision=by_digest[image.digest]) if image.digest in by_digest else image
        for image in images
    ]


def _read(backend: Backend, repository: str, digest: str) -> Manifest | CiEnvError:
    """The manifest, or the error when it cannot be read. AuthError still stops the run, and
    a body that does not hash to its digest (a lying registry) closes the repository."""
    try:
        return backend.manifest(repository, digest)
    except AuthError:
        raise
    except RegistryError as error:
        if error.code == DIGEST_MISMATCH:
            raise
        return error
    except CiEnvError as error:
        return error


def is_broken(error: CiEnvError) -> bool:
    """Only a definite 404 MANIFEST_UNKNOWN is a missing manifest; timeouts, 5xx and other
    404s (a proxy's, a repository's) may be passing and still fail closed."""
    return isinstance(error, NotFoundError) and error.status == 404 and error.code == MISSING


def use_referrers_api(backend: Backend) -> bool:
    """The referrers API costs requests per digest; it matters only where untagged manifests
    are listed (and so can be deleted or kept). Elsewhere referrers are seen through their
    fallback tags (`sha256-<hex>`, cosign `.sig/.att/.sbom`) in the listing, at no cost."""
    return backend.lists_untagged


def _walk(backend: Backend, repository: str, s: Settings, graph: DigestGraph) -> None:
    while wants := graph.wants():
        digests = sorted(wants.manifests)
        read = dict(
            zip(
                digests,
                map_parallel(s.parallel, lambda d: _read(backend, repository, d), digests),
                strict=True,
            )
        )
        errors = {d: e for d, e in read.items() if isinstance(e, CiEnvError)}
        graph.learn(
            manifests={d: m for d, m in read.items() if isinstance(m, Manifest)},
            unreadable={d: e.message for d, e in errors.items() if not is_broken(e)},
            broken={d: e.message for d, e in errors.items() if is_broken(e)},
        )
        subjects = sorted(wants.referrers)
        found = map_parallel(s.parallel, lambda d: backend.referrers(repository, d), subjects)
        graph.learn(referrers=dict(zip(subjects, found, strict=True)))


def plan_repository(backend: Backend, repository: str, s: Settings) -> RepoPlan:
    """The plan for one repository; listing errors and closed graphs become `error`."""

    def failed(message: str) -> RepoPlan:
        return RepoPlan(backend.registry, repository, backend.kind, (), message)

    use = s.in_use.of(backend.registry, repository) if s.in_use else RepoUse()
    try:
        names = backend.tag_names(repository)
        kept = None if names is None else policy.kept_by_name(names, s.rules, use)
        if kept is not None:  # nothing can go: no digest needs resolving
            return RepoPlan(backend.registry, repository, backend.kind, tuple(kept))
        listed = (
            backend.list_images(repository)
            if names is None
            else backend.images_of(repository, names)
        )
        revised = _with_revisions(backend, repository, s, listed, use)
        images = _with_times(backend, repository, s, revised, use)
        items = policy.evaluate(images, s.rules, s.now, s.history, use)
        graph = DigestGraph(
            images,
            items,
            keep_orphan_referrers=s.keep_orphan_referrers,
            use_referrers_api=use_referrers_api(backend),
            pinned=use.digests,
            skip_broken=s.skip_broken,
            delete_cascades=backend.delete_cascades,
        )
        _walk(backend, repository, s, graph)
        final = graph.items()
        broken = tuple(f"{tag}: {why}" for tag, why in sorted(graph.broken_tags().items()))
    except ClosedError as error:
        return failed(error.message + "; nothing was deleted in this repository")
    except (AuthError, UsageError):
        raise
    except CiEnvError as error:
        return failed(error.render().removeprefix("error: "))
    return RepoPlan(backend.registry, repository, backend.kind, tuple(final), broken=broken)


def expand(backend: Backend, repository: str) -> list[str]:
    """`group/*` -> every repository under `group` the registry lists; others unchanged."""
    if not repository.endswith("/*") and repository != "*":
        return [repository]
    prefix = repository.removesuffix("*").rstrip("/")
    return sorted(backend.list_repositories(prefix))


def parse_shard(text: str) -> tuple[int, int]:
    """`2/4` -> (2, 4); I counts from 1 like GitLab's CI_NODE_INDEX."""
    index, sep, total = text.partition("/")
    digits = sep and f"{index}{total}".isascii() and index.isdigit() and total.isdigit()
    if not (digits and 1 <= int(index) <= int(total)):
        raise UsageError(f"--shard {text!r} is not I/N", "write e.g. --shard 1/4 (I from 1 to N)")
    return int(index), int(total)


def in_shard(name: str, index: int, total: int) -> bool:
    """A stable share: the same name always lands in the same shard, on every machine."""
    bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % total
    return bucket == index - 1


def select(names: Iterable[str], shard: tuple[int, int] | None) -> list[str]:
    if shard is None:
        return list(names)
    return [name for name in names if in_shard(name, *shard)]
