"""The retention policy, pure: (images, rules, now, git history, in use) -> one decision per tag.

No I/O here. Rules that only look at a tag's name run first; only tags they leave undecided
reach the time rules, and `needs_time` tells the caller which images those are, so a backend
reads config blobs (a request or two each) only where a time can change the outcome.
A tag whose decision needs a time nobody could find is kept: unknown age is never "old".
An image in use (by tag or by digest, `ci_env.inuse`) keeps every tag it has, whatever the rules.
`keep.git` keeps whole images too (every tag of a kept digest), as werf keeps custom tags with
their image; the werf algorithm itself is in `keep_policies`, the image-to-commit mapping in
`revisions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ci_env import durations
from ci_env.cleanup import keep_policies
from ci_env.cleanup.keep_policies import History
from ci_env.cleanup.plan import Action, PlanItem, RepoPlan
from ci_env.cleanup.revisions import CommitFinder
from ci_env.cleanup.rules import Rules, Untagged, compile_pattern
from ci_env.inuse.base import RepoUse
from ci_env.registries.base import Image

# Referrer fallback tags: the OCI `sha256-<hex>` index and cosign's .sig/.att/.sbom.
REFERRER_TAG = re.compile(r"(sha256)-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?")
# ASCII: `\d` would take "1.0.²" from a hostile registry's tag list, and int("²") fails.
_SEMVER = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?", re.ASCII)


def referrer_subject(tag: str) -> str | None:
    """`sha256-<hex>.sig` -> `sha256:<hex>`; None for an ordinary tag."""
    match = REFERRER_TAG.fullmatch(tag)
    return f"{match.group(1)}:{match.group(2)}" if match else None


@dataclass(frozen=True)
class _Pending:
    image: Image
    tag: str | None


def _semver_key(tag: str) -> tuple[object, ...] | None:
    match = _SEMVER.fullmatch(tag)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    release = (int(major), int(minor), int(patch))
    if pre is None:
        return (*release, 1, ())
    # SemVer 2 precedence: numeric identifiers rank below alphanumeric ones, numerically.
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*release, 0, parts)


def _highest_semver(tags: Iterable[str], count: int) -> set[str]:
    keyed = [(key, tag) for tag in tags if (key := _semver_key(tag))]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return {tag for _, tag in keyed[:count]}


class _NameRules:
    """The rules that decide from the tag name alone."""

    def __init__(
        self,
        tags: Iterable[str],
        rules: Rules,
        images: Mapping[str, str] | None = None,
        use: RepoUse | None = None,
    ) -> None:
        self.rules = rules
        self.images = images or {}  # digest -> reason, for rules that keep whole images
        self.use = use or RepoUse()
        self.delete = [compile_pattern(p, "delete.tags") for p in rules.delete_tags]
        self.keep = [compile_pattern(p, "keep.tags") for p in rules.keep_tags]
        count = rules.keep_semver
        self.semver = _highest_semver(tags, count) if count else set()

    def reason(self, tag: str | None, digest: str = "") -> str | None:
        """A 'kept: ...' reason, or None when time rules must decide."""
        rules = self.rules
        if tag is None:
            return "kept: untagged (untagged: keep)" if rules.untagged is Untagged.KEEP else None
        if tag in self.use.tags:
            return f"kept: {self.use.tags[tag]}"
        if self.delete and not any(p.fullmatch(tag) for p in self.delete):
            return "kept: does not match delete.tags"
        if tag == "latest" and not rules.names_latest:
            return "kept: latest (delete.tags does not name it)"
        for pattern in self.keep:
            if pattern.fullmatch(tag):
                return f"kept: matches keep.tags {pattern.pattern!r}"
        if tag in rules.keep_list:
            return "kept: in the keep list"
        if digest in self.images:
            return self.images[digest]
        if tag in self.semver:
            return f"kept: one of the {rules.keep_semver} highest versions"
        return None


def _in_use(image: Image, use: RepoUse) -> str | None:
    """Who uses this image: by its digest, or by any of its tags (the image is the unit)."""
    if image.digest in use.digests:
        return use.digests[image.digest]
    for tag in image.tags:
        if tag in use.tags:
            return use.tags[tag]
        # A fallback referrer tag of a digest in use (its subject may not be listed).
        subject = referrer_subject(tag)
        if subject is not None and subject in use.digests:
            return f"referrer of an image {use.digests[subject]}"
    return None


def git_kept(
    images: Sequence[Image], rules: Rules, now: datetime | None, history: History | None
) -> dict[str, str]:
    """Digest -> reason for the tagged images werf's keepPolicies keep."""
    git = rules.keep_git
    if git is None or history is None or now is None:
        return {}
    tags = [compile_pattern(pattern, "keep.git.commit_tags") for pattern in git.commit_tags]
    finder = CommitFinder(history, tags)
    commits = {image.digest: finder.commits(image)[0] for image in images if image.tags}
    found = {digest: shas for digest, shas in commits.items() if shas}
    return keep_policies.kept_images(git.policies, history, found, now)


def _split(
    images: Sequence[Image],
    rules: Rules,
    now: datetime | None,
    history: History | None,
    use: RepoUse | None,
) -> tuple[list[PlanItem], list[_Pending]]:
    whole = git_kept(images, rules, now, history)
    names = _NameRules((tag for image in images for tag in image.tags), rules, whole, use)
    decided: list[PlanItem] = []
    pending: list[_Pending] = []
    for image in images:
        who = _in_use(image, names.use)
        for tag in image.tags or (None,):
            reason = f"kept: {who}" if who else names.reason(tag, image.digest)
            if reason is None:
                pending.append(_Pending(image, tag))
            else:
                decided.append(PlanItem(image.digest, tag, Action.KEEP, reason, image.time))
    return decided, pending


def kept_by_name(
    tags: Sequence[str], rules: Rules, use: RepoUse | None = None
) -> list[PlanItem] | None:
    """One KEEP item per tag when the name rules keep every tag (nothing here can go, so no
    digest is needed: items carry ""); None when some tag is left to the other rules."""
    names = _NameRules(tags, rules, use=use)
    items = []
    for tag in sorted(tags):
        reason = names.reason(tag)
        if reason is None:
            return None
        items.append(PlanItem("", tag, Action.KEEP, reason))
    return items


def open_by_name(tags: Sequence[str], rules: Rules, use: RepoUse | None = None) -> set[str]:
    """Tags the name rules leave to the time rules, where a rule uses a time (else none): the
    planner reads their images' times as soon as they are resolved. Only a hint: an image in
    use by digest or kept by keep.git needs no time, and `needs_time` stays the exact answer."""
    if not _uses_time(rules):
        return set()
    names = _NameRules(tags, rules, use=use)
    return {tag for tag in tags if names.reason(tag) is None}


def _uses_time(rules: Rules) -> bool:
    return bool(
        rules.keep_latest is not None
        or rules.keep_newer_than.total_seconds() > 0
        or rules.delete_older_than is not None
    )


def needs_revision(
    images: Sequence[Image], rules: Rules, use: RepoUse | None = None
) -> list[Image]:
    """Images keep.git may keep: a tag the name rules leave open, and no revision read yet."""
    if rules.keep_git is None:
        return []
    _, pending = _split(images, rules, None, None, use)
    open_ = {
        p.image.digest
        for p in pending
        if p.tag is not None and referrer_subject(p.tag) is None and p.image.revision is None
    }
    return [image for image in images if image.digest in open_]


def needs_time(
    images: Sequence[Image],
    rules: Rules,
    history: History | None = None,
    now: datetime | None = None,
    use: RepoUse | None = None,
) -> list[Image]:
    """Images without a time whose decision depends on one (ask the backend for these only);
    with `history` (and `now`), images keep.git keeps need none."""
    if not _uses_time(rules):
        return []
    _, pending = _split(images, rules, now, history, use)
    seen = dict.fromkeys(p.image.digest for p in pending if p.image.time is None)
    return [image for image in images if image.digest in seen]


def _latest(pending: Sequence[_Pending], count: int) -> set[str]:
    """Digests of the `count` most recent images among those still undecided."""
    timed = {p.image.digest: p.image.time for p in pending if p.image.time is not None}
    by_time = sorted(timed, key=lambda digest: timed[digest], reverse=True)
    return set(by_time[:count])


def _delete_reason(rules: Rules, tag: str | None) -> str:
    if tag is None:
        return "deleted: untagged"
    if rules.delete_tags:
        return "deleted: matches delete.tags"
    return "deleted: no keep rule matched"


def _timed(pending: _Pending, rules: Rules, now: datetime, latest: set[str]) -> PlanItem:
    image, tag = pending.image, pending.tag
    when = image.time

    def item(action: Action, reason: str) -> PlanItem:
        return PlanItem(image.digest, tag, action, reason, when)

    if image.digest in latest:
        return item(Action.KEEP, f"kept: one of the {rules.keep_latest} latest")
    if when is None and _uses_time(rules):
        return item(Action.KEEP, "kept: no push or creation time known")
    newer = rules.keep_newer_than
    if when is not None and newer.total_seconds() > 0 and when > now - newer:
        return item(Action.KEEP, f"kept: newer than {durations.render(newer)}")
    older = rules.delete_older_than
    if older is not None and when is not None:
        if when > now - older:
            return item(Action.KEEP, f"kept: not older than {durations.render(older)}")
        return item(Action.DELETE, f"deleted: older than {durations.render(older)}")
    return item(Action.DELETE, _delete_reason(rules, tag))


def evaluate(
    images: Sequence[Image],
    rules: Rules,
    now: datetime,
    history: History | None = None,
    use: RepoUse | None = None,
) -> list[PlanItem]:
    """One item per tag (and per untagged image); referrer tags are settled later by the graph."""
    decided, pending = _split(images, rules, now, history, use)
    counted = [p for p in pending if p.tag is not None and referrer_subject(p.tag) is None]
    latest = _latest(counted, rules.keep_latest) if rules.keep_latest else set()
    order = {image.digest: index for index, image in enumerate(images)}
    items = decided + [_timed(p, rules, now, latest) for p in pending]
    items.sort(key=lambda i: (order[i.digest], i.tag or ""))
    return items


def recheck_in_use(repo: RepoPlan, use: RepoUse) -> RepoPlan:
    """A saved plan against what is in use at apply time. An untag of an image now in use
    becomes a keep; a planned deletion of one closes the repository: the saved plan does not
    say what else that image needs (index children, referrers), only a new plan can."""
    if repo.error or not use:
        return repo
    in_use = dict(use.digests)
    for item in repo.items:
        if item.tag is not None and item.tag in use.tags and item.digest:
            in_use.setdefault(item.digest, use.tags[item.tag])
    items: list[PlanItem] = []
    doomed: list[str] = []
    for item in repo.items:
        who = in_use.get(item.digest)
        if who is None or item.action is Action.KEEP:
            items.append(item)
        elif item.action is Action.UNTAG:
            items.append(item.but(Action.KEEP, f"kept: {who} (since planning)"))
        else:
            doomed.append(f"{item.tag or item.digest} ({who})")
    if doomed:
        more = f" and {len(doomed) - 1} more" if len(doomed) > 1 else ""
        return replace(
            repo,
            error=f"the plan deletes an image in use since planning: {doomed[0]}{more}; "
            "make a new plan (nothing was deleted in this repository)",
        )
    return replace(repo, items=tuple(items))
