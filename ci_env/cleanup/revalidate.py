"""Re-validating a repository's plan right before its deletions, and again before the second wave.

Planning a large repository takes minutes and a saved plan may wait hours; meanwhile CI pushes.
So just before a repository's deletions its tags are listed again:

- every tag the plan does not know is resolved, and its digest, with everything that digest
  needs (index children, nested too; referrers by fallback tag or API), is protected;
- under `--apply-plan` the plan's kept tags are re-resolved too (a rollback moves `stable`
  onto a digest the plan deletes);
- tags planned for deletion need no second read: the Docker Registry API listing resolves
  each tag by one GET whose body is hashed (a `Docker-Content-Digest` that disagrees with the
  body fails the repository closed there), and native listings take digests from the API.

A protected digest is never deleted: its tagged items are only untagged, its untagged items
kept, each with a reason naming the tag.
Before the second wave (children of deleted indexes, referrers, untagged images) tags are
listed once more and tags unseen so far protect the same way. The remaining window, between
this check and each DELETE, is documented in the README.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ci_env.cleanup.graph import short
from ci_env.cleanup.plan import Action, PlanItem, RepoPlan
from ci_env.cleanup.planner import use_referrers_api
from ci_env.cleanup.policy import referrer_subject
from ci_env.errors import NotFoundError
from ci_env.registries.base import Backend, Image


@dataclass(frozen=True)
class Checked:
    """A re-validated plan and every tag -> digest seen so far (for the next wave's check)."""

    plan: RepoPlan
    seen: Mapping[str, str]
    changed: int = 0  # plan items the check turned from a removal into an untag or a keep
    ran: bool = True  # False: nothing to delete in this wave, nothing was checked


def planned_tags(plan: RepoPlan) -> dict[str, str]:
    """tag -> digest as the plan knows them (kept tags planned by name alone have no digest)."""
    return {item.tag: item.digest for item in plan.items if item.tag is not None}


def _current(
    backend: Backend, plan: RepoPlan, seen: Mapping[str, str], kept_too: bool
) -> dict[str, str]:
    """tag -> digest now, for the tags that matter (new tags, and kept ones with `kept_too`)."""
    repository = plan.repository
    names = backend.tag_names(repository)
    if names is None:
        return _by_tag(backend.list_images(repository))
    kept = {i.tag for i in plan.items if i.tag is not None and i.action is Action.KEEP}
    wanted = [name for name in names if name not in seen or (kept_too and name in kept)]
    found = _by_tag(backend.images_of(repository, wanted)) if wanted else {}
    listed = set(names)
    # Tags not re-resolved keep the digest we knew, as long as they are still listed.
    return {**{t: d for t, d in seen.items() if t in listed}, **found}


def _by_tag(images: Iterable[Image]) -> dict[str, str]:
    return {tag: image.digest for image in images for tag in image.tags}


def _roots(now: Mapping[str, str], seen: Mapping[str, str]) -> dict[str, str]:
    """digest -> why it must stay, for tags that appeared or moved since they were seen."""
    roots: dict[str, str] = {}
    for tag, digest in sorted(now.items()):
        before = seen.get(tag)
        if before is None:
            roots.setdefault(digest, f"tag {tag} appeared since planning")
        elif before and before != digest:
            roots.setdefault(digest, f"tag {tag} moved onto it since planning")
    return roots


class _Walk:
    """The closure of new roots over digests the plan does not already keep."""

    def __init__(self, backend: Backend, plan: RepoPlan) -> None:
        self.backend = backend
        self.repository = plan.repository
        self.use_api = use_referrers_api(backend)
        doomed = {i.digest for i in plan.items if i.action is Action.DELETE}
        # Digests the plan keeps (or only untags) already have their whole graph kept.
        self.safe = {i.digest for i in plan.items if i.digest} - doomed
        self.followers: dict[str, list[str]] = {}
        for item in plan.items:
            subject = referrer_subject(item.tag) if item.tag else None
            if subject is not None:
                self.followers.setdefault(subject, []).append(item.digest)

    def closure(self, roots: Mapping[str, str]) -> dict[str, str]:
        protected: dict[str, str] = {}
        stack = list(roots.items())
        while stack:
            digest, why = stack.pop()
            if digest in protected or digest in self.safe:
                continue
            protected[digest] = why
            found = list(self.followers.get(digest, ()))
            found += self._children(digest)
            if self.use_api:
                found += self.backend.referrers(self.repository, digest)
            stack.extend((d, why) for d in found)
        return protected

    def _children(self, digest: str) -> tuple[str, ...]:
        """Read every protected digest: the plan does not carry media types, and these are
        few (tags pushed or moved during the run)."""
        try:
            return self.backend.manifest(self.repository, digest).children
        except NotFoundError:
            return ()  # gone (or a broken index's missing child): nothing to protect there


def _settle(item: PlanItem, protected: Mapping[str, str]) -> PlanItem:
    subject = referrer_subject(item.tag) if item.tag else None
    if subject is not None and subject in protected and item.action is not Action.KEEP:
        return item.but(Action.KEEP, f"kept: referrer of {short(subject)}: {protected[subject]}")
    if item.action is not Action.DELETE or item.digest not in protected:
        return item
    why = protected[item.digest]
    if item.tag is None:
        return item.but(Action.KEEP, f"kept: {why}")
    old = item.reason.removeprefix("deleted: ")
    return item.but(Action.UNTAG, f"untagged: {old}; digest kept: {why}")


def revalidate(
    backend: Backend,
    plan: RepoPlan,
    seen: Mapping[str, str],
    *,
    wave: int,
    kept_too: bool,
) -> Checked:
    """Check `plan` against the registry now (see the module doc). `seen` is tag -> digest as
    known so far (the plan's tags, then what the first check saw). CiEnvError: the caller fails
    the repository (or the wave) closed."""
    if plan.error or not plan.waves()[wave]:
        return Checked(plan, seen, ran=False)
    now = _current(backend, plan, seen, kept_too)
    roots = _roots(now, seen)
    if not roots:
        return Checked(plan, {**seen, **now})
    protected = _Walk(backend, plan).closure(roots)
    items = tuple(_settle(item, protected) for item in plan.items)
    changed = sum(1 for a, b in zip(plan.items, items, strict=True) if a != b)
    return Checked(replace(plan, items=items), {**seen, **now}, changed)
