"""Planning one repository: list, fill in times where they matter, decide, walk the graph.

All registry I/O of planning lives here, over the `Backend` interface; the decisions are made
by the pure `policy` and `graph` modules. Reads run on one pool of `parallel` workers that every
repository planned at once shares (`Settings.workers`; one pooled session per registry is
shared by the backend), and a tag's time is read as soon as its manifest is known, in the same
task, where the name rules leave the tag to a time rule. A needed manifest that cannot be read
fails the repository closed: its plan carries the error and no deletions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
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
# Repositories planned at once at least (more with more workers): a repository waits on round
# trips between its phases (listing, resolving, the graph walk), which others fill.
PLAN_REPOSITORIES = 4

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
    # The shared workers (the run's request budget); None: a pool of `parallel` per call.
    # Only a repository's own thread submits to it, so no task ever waits on another.
    workers: Executor | None = None
    on_listed: Callable[[int], None] | None = None  # progress: tags listed (the total)
    on_resolved: Callable[[int], None] | None = None  # progress: tags resolved or decided


def _map(s: Settings, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`func` over `items` on the shared workers (or a pool of their own), results in order."""
    if len(items) <= 1:
        return [func(item) for item in items]
    with _workers(s) as pool:
        return list(pool.map(func, items))


@contextmanager
def _workers(s: Settings) -> Iterator[Executor]:
    """The shared workers, or (planning alone, as tests do) a pool of `parallel` of its own."""
    if s.workers is not None:
        yield s.workers
        return
    with ThreadPoolExecutor(max(1, s.parallel), thread_name_prefix="plan") as pool:
        yield pool


def _call(s: Settings, func: Callable[[str], R], repository: str) -> R:
    """One request-sized call, on the shared workers where there are some (the budget)."""
    return func(repository) if s.workers is None else s.workers.submit(func, repository).result()


def _count(report: Callable[[int], None] | None, count: int) -> None:
    if report is not None and count:
        report(count)


def _resolve_listed(
    backend: Backend, repository: str, s: Settings, use: RepoUse, pages: Iterator[list[str]]
) -> list[Image] | RepoPlan:
    """The listed tags as images; or, when no tag can go by its name, the plan keeping them all
    (no digest needed: items carry "").

    Tags are resolved as their listing page arrives, each in its own task; the next page is
    asked for before a page's tags are queued, so listing never waits behind resolving. A tag
    the name rules leave to a time rule has its time read right after, in that task. Nothing is
    resolved until some tag can go: name rules over part of the listing keep no more than over
    all of it (its highest versions include the listing's), so a tag that can go there can go.
    keep.git decides over whole images: times wait for it."""
    names: list[str] = []
    futures: list[Future[list[Image]]] = []  # one per tag, in the order of `names`

    def submit(listing: list[str]) -> None:
        """Queue the tags listed but not yet queued; `listing` decides which are timed."""
        timed = policy.open_by_name(listing, s.rules, use) if s.history is None else set()
        tags = names[len(futures) :]
        futures.extend(pool.submit(_one, backend, repository, s, t, t in timed) for t in tags)

    with _workers(s) as pool:
        coming = pool.submit(next, pages, None)
        while (page := coming.result()) is not None:
            coming = pool.submit(next, pages, None)
            _count(s.on_listed, len(page))
            names.extend(page)
            if futures or policy.kept_by_name(page, s.rules, use) is None:
                submit(names[len(futures) :])
        kept = policy.kept_by_name(names, s.rules, use)
        if kept is not None:
            _count(s.on_resolved, len(kept))
            return RepoPlan(backend.registry, repository, backend.kind, tuple(kept))
        submit(names)  # tags that only the whole listing leaves open
        return merge(image for future in futures for image in future.result())


def _one(backend: Backend, repository: str, s: Settings, tag: str, timed: bool) -> list[Image]:
    found = backend.images_of(repository, [tag])
    if timed:
        found = [_timed(backend, repository, image) for image in found]
    _count(s.on_resolved, 1)
    return found


def _timed(backend: Backend, repository: str, image: Image) -> Image:
    return image if image.time else replace(image, created=backend.image_time(repository, image))


def merge(images: Iterable[Image]) -> list[Image]:
    """Images of single tags grouped by digest (tags sorted), sorted by digest. Linear: one
    digest may carry 20,000 tags."""
    first: dict[str, Image] = {}
    tags: dict[str, list[str]] = {}
    for image in images:
        known = first.setdefault(image.digest, image)
        if known.created is None and image.created is not None:
            first[image.digest] = image
        tags.setdefault(image.digest, []).extend(image.tags)
    return [replace(first[d], tags=tuple(sorted(tags[d]))) for d in sorted(first)]


def _with_times(
    backend: Backend, repository: str, s: Settings, images: list[Image], use: RepoUse
) -> list[Image]:
    """Fill in creation times only for images whose decision depends on one."""
    missing = policy.needs_time(images, s.rules, s.history, s.now, use)
    if not missing:
        return images
    logger.debug("%s: reading times of %d images", repository, len(missing))
    times = _map(s, lambda image: backend.image_time(repository, image), missing)
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
    found = _map(s, lambda image: backend.image_revision(repository, image), missing)
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
                _map(s, lambda d: _read(backend, repository, d), digests),
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
        found = _map(s, lambda d: backend.referrers(repository, d), subjects)
        graph.learn(referrers=dict(zip(subjects, found, strict=True)))


def plan_repository(backend: Backend, repository: str, s: Settings) -> RepoPlan:
    """The plan for one repository; listing errors and closed graphs become `error`."""

    def failed(message: str) -> RepoPlan:
        return RepoPlan(backend.registry, repository, backend.kind, (), message)

    use = s.in_use.of(backend.registry, repository) if s.in_use else RepoUse()
    try:
        pages = backend.tag_name_pages(repository)
        if pages is None:
            listed = _call(s, backend.list_images, repository)
            tags = sum(len(image.tags) for image in listed)
            _count(s.on_listed, tags)
            _count(s.on_resolved, tags)  # native listings come with their digests
        else:
            resolved = _resolve_listed(backend, repository, s, use, pages)
            if isinstance(resolved, RepoPlan):
                return resolved
            listed = resolved
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


def plan_all(pairs: Sequence[tuple[Backend, str]], s: Settings) -> Iterator[tuple[int, RepoPlan]]:
    """(index in `pairs`, plan) as each repository's plan is final, so its deletions can start
    while others are still planned. Repositories are planned at once on threads of their own;
    their requests share `s.workers`. An AuthError or UsageError stops the rest."""
    lanes = max(1, min(len(pairs), max(PLAN_REPOSITORIES, s.parallel)))
    pool = ThreadPoolExecutor(lanes, thread_name_prefix="plan-repo")
    try:
        futures = {
            pool.submit(plan_repository, backend, name, s): index
            for index, (backend, name) in enumerate(pairs)
        }
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
