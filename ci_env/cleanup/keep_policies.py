"""werf's git-history keepPolicies, pure: (policies, git history, image commits, now) -> kept.

Follows werf's `pkg/cleaning/git_history_based_cleanup` (reference_to_scan.go, scanner.go) and
`pkg/config/meta_cleanup.go` for the defaults:
- references are origin branches and tags, dated by the branch head's committer date, an
  annotated tag's tagger date, a lightweight tag's commit date;
- each policy picks references by name (`/re/` is `^re$`, anything else an exact name), then
  by `limit` (`last` newest, `in` newer than now-in; `operator` And intersects, Or unites);
  a reference picked by several policies takes the last one's `imagesPerReference`;
- per reference, the images whose commit is reachable (a branch: every ancestor of its head; a
  tag: its commit only) are grouped by their newest reached commit (images on one commit count
  as one), newest first; `imagesPerReference.last` groups are kept (-1 all, 0 none), and with
  `in` the And/Or of "first `last`" and "commit newer than now-in";
- the kept set is the union over all references.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class Operator(enum.StrEnum):
    AND = "And"
    OR = "Or"


class RefKind(enum.StrEnum):
    BRANCH = "branch"
    TAG = "tag"


@dataclass(frozen=True)
class Limit:
    """`limit` of references or `imagesPerReference`; werf's defaults differ between the two."""

    last: int = -1
    within: timedelta | None = None  # werf's `in`
    operator: Operator = Operator.AND

    def describe(self) -> str:
        parts = [f"in {_hours(self.within)}"] if self.within is not None else []
        parts.append(f"last {self.last}")
        if self.within is not None:
            parts.append(self.operator.value)
        return " ".join(parts)


IMAGES_DEFAULT = Limit(last=1)


@dataclass(frozen=True)
class KeepPolicy:
    kind: RefKind
    name: str  # as written: `main` or `/re/`
    limit: Limit | None = None
    images: Limit = IMAGES_DEFAULT
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_reference(self.name))

    def describe(self) -> str:
        text = f"{self.kind.value} {self.name}"
        if self.limit is not None:
            text += f", limit {self.limit.describe()}"
        return text + f", imagesPerReference {self.images.describe()}"


def compile_reference(name: str) -> re.Pattern[str]:
    """werf's processRegexpString: `/re/` -> ^re$, otherwise the literal name. re.error
    propagates (the rules reader turns it into an error naming the key and line)."""
    if len(name) >= 2 and name.startswith("/") and name.endswith("/"):
        return re.compile(f"^(?:{name[1:-1]})$")
    return re.compile(f"^{re.escape(name)}$")


_WEEK = timedelta(hours=168)
# werf's defaults (reference_to_scan.go), used only when no policy is given; the docs page says
# 2 images for main/master/staging/production, the code 10: the code is what runs.
DEFAULT_POLICIES = (
    KeepPolicy(RefKind.TAG, "/.*/", Limit(last=10)),
    KeepPolicy(RefKind.BRANCH, "/.*/", Limit(10, _WEEK), Limit(2, _WEEK)),
    KeepPolicy(RefKind.BRANCH, "/^(main|master|staging|production)$/", None, Limit(last=10)),
)


@dataclass(frozen=True)
class GitRef:
    kind: RefKind
    name: str  # branch without `origin/`, or the tag name
    commit: str  # full SHA (an annotated tag peeled to its commit)
    date: datetime


@dataclass(frozen=True)
class Commit:
    date: datetime  # committer date
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class History:
    refs: tuple[GitRef, ...] = ()
    commits: Mapping[str, Commit] = field(default_factory=dict)


def _hours(value: timedelta | None) -> str:
    seconds = int(value.total_seconds()) if value else 0
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s"


def _by_limit(refs: list[GitRef], limit: Limit | None, now: datetime) -> list[GitRef]:
    if limit is None:
        return refs
    newest = sorted(refs, key=lambda ref: ref.date, reverse=True)
    by_last = set(newest if limit.last < 0 else newest[: limit.last])
    by_in = {r for r in refs if limit.within is None or r.date > now - limit.within}
    if limit.operator is Operator.OR:
        return [r for r in newest if r in by_last or r in by_in]
    return [r for r in newest if r in by_last and r in by_in]


def select_references(
    policies: Iterable[KeepPolicy], refs: Iterable[GitRef], now: datetime
) -> dict[GitRef, tuple[int, KeepPolicy]]:
    """Reference -> (1-based policy number, policy); a later policy overrides an earlier one."""
    refs = list(refs)
    chosen: dict[GitRef, tuple[int, KeepPolicy]] = {}
    for number, policy in enumerate(policies, 1):
        named = [r for r in refs if r.kind is policy.kind and policy.pattern.search(r.name)]
        for ref in _by_limit(named, policy.limit, now):
            chosen[ref] = (number, policy)
    return chosen


def _parents_first(commits: Mapping[str, Commit]) -> list[str]:
    """Every commit after all its parents (iterative: histories are deep)."""
    order: list[str] = []
    done: set[str] = set()
    for start in commits:
        stack = [start]
        while stack:
            sha = stack[-1]
            if sha in done:
                stack.pop()
                continue
            waiting = [p for p in commits[sha].parents if p in commits and p not in done]
            if waiting:
                stack.extend(waiting)
            else:
                done.add(sha)
                order.append(sha)
                stack.pop()
    return order


class _Reach:
    """Which wanted commits each commit reaches, for the whole history in one pass: a bit set
    per commit, the union of its parents' (shared, not copied, along single-parent runs).
    Walking every reference's ancestry instead costs references x commits (see
    bench/keep_policies_bench.py)."""

    def __init__(self, history: History, image_commits: Mapping[str, frozenset[str]]) -> None:
        self.images_on: dict[str, list[str]] = {}
        for image, commits in image_commits.items():
            for sha in commits:
                self.images_on.setdefault(sha, []).append(image)
        # Bit i is the i-th newest wanted commit, so reading bits from the lowest walks a
        # reference's commits newest first and can stop as soon as the policy has its images.
        dates = {sha: history.commits[sha].date for sha in self.images_on}
        self.wanted = sorted(self.images_on, key=lambda sha: (dates[sha], sha), reverse=True)
        index = {sha: i for i, sha in enumerate(self.wanted)}
        self.bits: dict[str, int] = {}
        for sha in _parents_first(history.commits):
            parents = [self.bits[p] for p in history.commits[sha].parents if p in self.bits]
            value = parents[0] if parents else 0
            for other in parents[1:]:
                value |= other
            if sha in index:
                value |= 1 << index[sha]
            self.bits[sha] = value

    def newest_first(self, ref: GitRef) -> Iterator[str]:
        """Wanted commits reachable from `ref`, newest first (a tag: only its own commit)."""
        if ref.kind is RefKind.TAG:
            if ref.commit in self.images_on:
                yield ref.commit
            return
        value = self.bits.get(ref.commit, 0)
        while value:
            low = value & -value
            yield self.wanted[low.bit_length() - 1]
            value ^= low


def images_of_reference(
    history: History,
    ref: GitRef,
    images: Limit,
    image_commits: Mapping[str, frozenset[str]],
    now: datetime,
    reach: _Reach | None = None,
) -> dict[str, str]:
    """Image -> the commit that keeps it, for one reference under its imagesPerReference.

    Reached commits come newest first; each image counts at its newest reached commit, and a
    commit with images not counted before is one group. Kept: the first `last` groups (all
    for -1); with `in`, And keeps only groups newer than `in`, Or adds every group newer than
    `in`. (werf keeps every reached image when there are no more than `last`: the same set.)"""
    if images.last == 0:
        return {}
    reach = reach or _Reach(history, image_commits)
    recent = None if images.within is None else now - images.within
    kept: dict[str, str] = {}
    groups = 0
    for sha in reach.newest_first(ref):
        young = recent is None or history.commits[sha].date > recent
        full = 0 <= images.last <= groups
        # Commits come newest first: once one is too old or past `last`, so is the rest.
        if not young and (full or images.operator is Operator.AND):
            break
        if full and (recent is None or images.operator is Operator.AND):
            break
        new = [image for image in reach.images_on[sha] if image not in kept]
        if new:
            groups += 1
            kept.update(dict.fromkeys(new, sha))
    return kept


def kept_images(
    policies: Iterable[KeepPolicy],
    history: History,
    image_commits: Mapping[str, frozenset[str]],
    now: datetime,
) -> dict[str, str]:
    """Image -> reason (`kept: commit <sha7> of branch main (keep.git policy 2: ...)`) for
    every image some reference keeps. `image_commits` holds only commits in `history`."""
    chosen = select_references(policies, history.refs, now)
    # Branches before tags, newest first, so the reason names the most telling reference.
    refs = sorted(chosen, key=lambda r: (r.kind is RefKind.TAG, -r.date.timestamp(), r.name))
    reach = _Reach(history, image_commits)
    kept: dict[str, str] = {}
    for ref in refs:
        number, policy = chosen[ref]
        for image, sha in images_of_reference(
            history, ref, policy.images, image_commits, now, reach
        ).items():
            kept.setdefault(
                image,
                f"kept: commit {sha[:7]} of {ref.kind.value} {ref.name} "
                f"(keep.git policy {number}: {policy.describe()})",
            )
    return kept
