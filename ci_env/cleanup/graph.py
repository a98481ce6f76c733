"""The digest graph, pure: what every kept tag needs, and how to delete without breaking it.

A kept tag needs its manifest, every child of a kept index (nested indexes too) and its
referrers (signatures, SBOMs, attestations: by the referrers API or by `sha256-<hex>` fallback
and cosign `.sig/.att/.sbom` tags). With that set of *needed* digests:

- a tag planned for deletion whose digest is needed is only untagged, never deleted by digest;
- an untagged image that is needed is never deleted (children of kept indexes);
- referrers whose subject is deleted are deleted with it (unless orphans are kept);
- the children of a deleted index (nested ones too) are deleted after it unless something kept
  needs them: they are parts of that image, not images of their own, so `untagged: keep` does
  not keep them (that is how GHCR and ECR fill up with orphaned platform manifests);
- a needed manifest that cannot be read fails the repository closed, naming the kept tag;
  one that answers a definite 404 MANIFEST_UNKNOWN (a child another tool deleted) is *broken*:
  closed too by default, or with `skip_broken` the kept tags that need it are reported as
  broken and left alone with everything they still reference, and the rest is cleaned;
- `pinned` digests (in use by a workload) are needed like kept tags wherever the graph meets
  them, even unlisted (a platform manifest that a pod runs, inside an index being deleted);
- with `delete_cascades` (Harbor deletes an index's unreferenced children with it) an index
  holding a needed digest is needed itself: untagged, never deleted.

The graph does no I/O: the caller loops `wants()` -> read -> `learn(...)` until nothing is
wanted, then takes `items()`. Manifests are only read where they can have children: digests
the listing shows as plain manifests are never fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ci_env.cleanup.plan import Action, PlanItem
from ci_env.cleanup.policy import referrer_subject
from ci_env.oci import INDEX_MEDIA_TYPES, Manifest
from ci_env.registries.base import Image

# Media types that say nothing about a manifest (no type, or a generic one).
_UNKNOWN = frozenset({"", "application/json", "text/plain", "application/octet-stream"})


@dataclass(frozen=True)
class Wants:
    manifests: frozenset[str] = frozenset()
    referrers: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.manifests or self.referrers)


class ClosedError(Exception):
    """A needed manifest could not be read: the repository must delete nothing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _State:
    needed: dict[str, str] = field(default_factory=dict)  # digest -> kept tag that needs it
    wants_m: set[str] = field(default_factory=set)
    wants_r: set[str] = field(default_factory=set)


class DigestGraph:
    def __init__(
        self,
        images: Sequence[Image],
        items: Sequence[PlanItem],
        *,
        keep_orphan_referrers: bool = False,
        use_referrers_api: bool = False,
        pinned: Mapping[str, str] | None = None,
        skip_broken: bool = False,
        delete_cascades: bool = False,
    ) -> None:
        self.items_in = list(items)
        # digest -> "an image in use by ..."; a root label no tag can spell (tags have no spaces)
        self.pinned = {digest: f"an image {who}" for digest, who in (pinned or {}).items()}
        self.skip_broken = skip_broken
        self.broken: dict[str, str] = {}  # digest -> error text (404 MANIFEST_UNKNOWN)
        self.keep_orphans = keep_orphan_referrers
        self.use_api = use_referrers_api
        self.cascades = delete_cascades
        self.media = {image.digest: image.media_type for image in images}
        self.listed = {image.digest for image in images}
        self.manifests: dict[str, Manifest] = {}
        self.referrers: dict[str, tuple[str, ...]] = {}
        self.unreadable: dict[str, str] = {}  # digest -> error text
        # Fallback referrer tags whose subject is listed follow their subject.
        self.follower_tags: dict[str, list[PlanItem]] = {}
        for item in self.items_in:
            subject = referrer_subject(item.tag) if item.tag else None
            if subject is not None and subject in self.listed:
                self.follower_tags.setdefault(subject, []).append(item)
        self.tag_subject = {
            id(i): subject for subject, group in self.follower_tags.items() for i in group
        }

    # ---- learning -------------------------------------------------------------------------

    def learn(
        self,
        manifests: Mapping[str, Manifest] | None = None,
        referrers: Mapping[str, Iterable[str]] | None = None,
        unreadable: Mapping[str, str] | None = None,
        broken: Mapping[str, str] | None = None,
    ) -> None:
        self.manifests.update(manifests or {})
        self.broken.update(broken or {})
        self.referrers.update({d: tuple(r) for d, r in (referrers or {}).items()})
        self.unreadable.update(unreadable or {})

    def subject_of(self, item: PlanItem) -> str | None:
        """The listed subject an item follows: by fallback tag, or (untagged) by the API."""
        if item.tag is not None:
            return self.tag_subject.get(id(item))
        for subject, found in self.referrers.items():
            if item.digest in found and subject in self.listed:
                return subject
        return None

    def _known(self, digest: str) -> bool:
        return digest in self.manifests or digest in self.unreadable or digest in self.broken

    def _may_have_children(self, digest: str) -> bool:
        return may_have_children(self.media.get(digest, ""))

    # ---- the closure ----------------------------------------------------------------------

    def _parts(self) -> set[str]:
        """Digests some known index lists as its child: parts of an image, not images."""
        return {child for manifest in self.manifests.values() for child in manifest.children}

    def _roots(self) -> list[tuple[str, str]]:
        roots = []
        parts = self._parts()
        for item in self.items_in:
            follower = self.subject_of(item) is not None
            part = item.tag is None and item.digest in parts
            if item.action is Action.KEEP and not part and (not follower or self.keep_orphans):
                roots.append((item.digest, item.tag or item.digest))
        # Pinned digests the graph knows of (listed, or a child of a read index); others are
        # not in this repository's graph, so nothing here can delete them.
        known = self.listed | parts
        roots.extend((d, label) for d, label in self.pinned.items() if d in known)
        return roots

    def _by(self, root: str) -> str:
        """Who needs a digest, for reasons: `kept tag v1` or `an image in use by ...`."""
        return root if root in self.pinned.values() else f"kept tag {root}"

    def _edges(self, digest: str, state: _State) -> list[str]:
        out = [item.digest for item in self.follower_tags.get(digest, ())]
        manifest = self.manifests.get(digest)
        if manifest is not None:
            out.extend(manifest.children)
        elif not self._known(digest) and self._may_have_children(digest):
            state.wants_m.add(digest)
        if self.use_api:
            if digest in self.referrers:
                out.extend(self.referrers[digest])
            else:
                state.wants_r.add(digest)
        return out

    def _closure(self) -> _State:
        state = _State()
        self._grow(state, self._roots())
        while self.cascades and (holders := self._holders(state.needed)):
            self._grow(state, holders)
        return state

    def _grow(self, state: _State, stack: list[tuple[str, str]]) -> None:
        while stack:
            digest, root = stack.pop()
            if digest in state.needed:
                continue
            state.needed[digest] = root
            stack.extend((child, root) for child in self._edges(digest, state))

    def _holders(self, needed: Mapping[str, str]) -> list[tuple[str, str]]:
        """Where deleting an index deletes its children with it, every index that holds a
        needed digest is needed too: its tags are only untagged, it is never deleted."""
        return [
            (parent, next(needed[c] for c in manifest.children if c in needed))
            for parent, manifest in self.manifests.items()
            if parent not in needed and any(c in needed for c in manifest.children)
        ]

    def _deleted(self, needed: Mapping[str, str]) -> set[str]:
        planned = {i.digest for i in self.items_in if i.action is not Action.KEEP}
        return planned - set(needed)

    def wants(self) -> Wants:
        state = self._closure()
        wants_m, wants_r = set(state.wants_m), set(state.wants_r)
        deleted, _ = self._cascade(state.needed)
        for digest in deleted:
            # Referrers of what is deleted follow it (or are kept as orphans on request).
            if self.use_api and digest not in self.referrers:
                wants_r.add(digest)
            # A deleted index is read to find its children (unreadable: they stay).
            if not self._known(digest) and self._may_have_children(digest):
                wants_m.add(digest)
        return Wants(frozenset(wants_m), frozenset(wants_r))

    def _cascade(self, needed: Mapping[str, str]) -> tuple[set[str], dict[str, str]]:
        """Deleted digests plus what goes with them: API referrers of deleted subjects and
        children of deleted indexes nothing kept needs. Returns (all, extra -> reason)."""
        deleted = self._deleted(needed)
        extra: dict[str, str] = {}
        stack = list(deleted)
        while stack:
            parent = stack.pop()
            followers = [] if self.keep_orphans else self.referrers.get(parent, ())
            manifest = self.manifests.get(parent)
            children = manifest.children if manifest is not None else ()
            for digest, why in [(r, "referrer of") for r in followers] + [
                (c, "part of") for c in children
            ]:
                if digest not in needed and digest not in deleted:
                    deleted.add(digest)
                    extra[digest] = f"deleted: {why} deleted {short(parent)}"
                    stack.append(digest)
        return deleted, extra

    # ---- the result -----------------------------------------------------------------------

    def items(self) -> list[PlanItem]:
        """The final plan items. Raises ClosedError when a needed manifest was unreadable."""
        state = self._closure()
        self._fail_closed(state.needed)
        needed = state.needed
        _, extra = self._cascade(needed)
        broken = self.broken_tags()
        out = [self._settle(item, needed, extra) for item in self.items_in]
        out = [
            i.but(Action.KEEP, f"kept: broken ({broken[i.tag]})") if i.tag in broken else i
            for i in out
        ]
        present = {item.digest for item in out}
        out.extend(
            PlanItem(digest, None, Action.DELETE, reason)
            for digest, reason in extra.items()
            if digest not in present
        )
        return out

    def _fail_closed(self, needed: Mapping[str, str]) -> None:
        closing = dict(self.unreadable)
        if not self.skip_broken:
            closing.update(self.broken)
        for digest, error in closing.items():
            if digest in needed:
                root = needed[digest]
                what = "" if digest == root else f" (it needs {digest})"
                hint = (
                    "; pass --on-broken skip (policy `broken: skip`) to leave broken tags alone"
                    if digest in self.broken
                    else ""
                )
                raise ClosedError(
                    f"cannot read the manifest of {self._by(root)}{what}: {error}{hint}"
                )

    def broken_tags(self) -> dict[str, str]:
        """Kept tags that need a broken (404 MANIFEST_UNKNOWN) manifest -> what is missing."""
        if not self.broken:
            return {}
        found: dict[str, str] = {}
        for digest, tag in self._roots():
            missing = self._missing_from(digest)
            if missing is not None and tag != digest:
                found[tag] = f"needs {missing}, which answers 404 MANIFEST_UNKNOWN"
        return found

    def _missing_from(self, start: str) -> str | None:
        """The first broken digest `start` reaches through known edges, if any."""
        seen: set[str] = set()
        stack = [start]
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            if digest in self.broken:
                return digest
            stack.extend(self._edges(digest, _State()))
        return None

    def _settle(
        self, item: PlanItem, needed: Mapping[str, str], extra: Mapping[str, str]
    ) -> PlanItem:
        subject = self.subject_of(item)
        if subject is not None:
            return self._settle_follower(item, subject, needed)
        if item.tag is None and item.digest in extra and item.digest not in needed:
            return item.but(Action.DELETE, extra[item.digest])
        if item.action is Action.KEEP:
            return item
        root = needed.get(item.digest)
        if root is None:
            return item.but(Action.DELETE, item.reason)
        if item.tag is None:
            return item.but(Action.KEEP, f"kept: needed by {self._by(root)}")
        why = item.reason.removeprefix("deleted: ")
        return item.but(Action.UNTAG, f"untagged: {why}; digest still needed by {self._by(root)}")

    def _settle_follower(self, item: PlanItem, subject: str, needed: Mapping[str, str]) -> PlanItem:
        if subject in needed:
            if item.action is Action.KEEP:
                return item
            return item.but(Action.KEEP, f"kept: referrer of {self._by(needed[subject])}")
        if self.keep_orphans:
            return item.but(Action.KEEP, "kept: --keep-orphan-referrers")
        if item.digest in needed:
            if item.tag is None:
                return item.but(Action.KEEP, f"kept: needed by {self._by(needed[item.digest])}")
            return item.but(Action.UNTAG, f"untagged: referrer of deleted {short(subject)}")
        return item.but(Action.DELETE, f"deleted: referrer of deleted {short(subject)}")


def may_have_children(media_type: str) -> bool:
    """Unknown or generic types are read: a kept index served as `application/json` (by a
    caching proxy, say) must still have its children kept."""
    return media_type.split(";")[0].strip().lower() in _UNKNOWN | INDEX_MEDIA_TYPES


def short(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}"
