"""Which commit an image was built from, for any tag scheme; pure. First match wins:

1. its `org.opencontainers.image.revision` (config label, manifest or index annotation; buildx
   may append `-dirty`), when that commit is in the clone: labels are inherited from FROM
   images, so a revision the clone does not have says nothing about this repository (werf);
2. tags carrying a SHA: `<sha7..40>`, `sha-<sha7..40>` (docker/metadata-action), and the first
   group of the user's `keep.git.commit_tags` regexes (e.g. `.+-([0-9a-f]{7,40})`);
3. a branch name, its GitLab slug or metadata-action spelling, or a git tag name (also without
   its leading `v`, as metadata-action's `type=semver` writes it): the commit it points at.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from ci_env.cleanup.keep_policies import History, RefKind
from ci_env.cleanup.rules import TagPattern
from ci_env.oci import REVISION
from ci_env.registries.base import Image

_SHA = re.compile(r"(?:sha-)?([0-9a-f]{7,40})")


def slug(ref: str) -> str:
    """GitLab's CI_COMMIT_REF_SLUG: lowercase, non-[a-z0-9] -> '-', 63 bytes, no edge dashes."""
    return re.sub(r"[^a-z0-9]", "-", ref.lower())[:63].strip("-")


def metadata_action(ref: str) -> str:
    """docker/metadata-action's tag spelling of a ref: runs of [^a-zA-Z0-9._-] -> '-'."""
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", ref)


class CommitFinder:
    """Maps images to full SHAs of `history`; build one per run (it indexes the history)."""

    def __init__(self, history: History, commit_tags: Sequence[TagPattern] = ()) -> None:
        self.shas = sorted(history.commits)
        self.commit_tags = tuple(commit_tags)
        self.names: dict[str, str] = {}
        # Tags first, branches last: a branch wins a name both spell.
        for ref in sorted(history.refs, key=lambda r: r.kind is RefKind.BRANCH):
            spellings = {ref.name, metadata_action(ref.name)}
            if ref.kind is RefKind.BRANCH:
                spellings.add(slug(ref.name))
            elif ref.name.startswith("v") and ref.name[1:2].isdigit():
                spellings.add(ref.name[1:])
            for spelling in spellings:
                self.names[spelling] = ref.commit

    def resolve(self, text: str) -> str | None:
        """A full SHA, or a unique prefix of 7+ hex characters, of a commit in the clone."""
        text = text.strip().lower().removesuffix("-dirty")
        if not re.fullmatch(r"[0-9a-f]{7,40}", text):
            return None
        index = bisect.bisect_left(self.shas, text)
        if index == len(self.shas) or not self.shas[index].startswith(text):
            return None
        following = self.shas[index + 1] if index + 1 < len(self.shas) else ""
        return None if following.startswith(text) else self.shas[index]

    def _from_tags(self, tags: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for tag in tags:
            matches = [_SHA.fullmatch(tag), *(p.fullmatch(tag) for p in self.commit_tags)]
            candidates = [m.group(1) for m in matches if m and m.groups()]
            found.update(sha for text in candidates if (sha := self.resolve(text)))
        return found

    def commits(self, image: Image) -> tuple[frozenset[str], str]:
        """(commits, how they were found) — empty when nothing ties the image to the clone."""
        if image.revision and (sha := self.resolve(image.revision)):
            return frozenset({sha}), REVISION
        if shas := self._from_tags(image.tags):
            return frozenset(shas), "tag"
        named = {self.names[tag] for tag in image.tags if tag in self.names}
        return frozenset(named), "ref name"
