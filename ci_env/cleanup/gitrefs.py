"""Git-aware retention: which image tags belong to something still alive in git.

A tag is *live* when it equals a live branch name or its GitLab slug, a git tag name, or a
commit SHA (full, or a 7+ character prefix) among the last N commits of a live branch (and the
commit a git tag points at). Live refs come from `git ls-remote origin`, so a shallow CI clone
still sees every branch; recent commits come from the local history where the clone has it,
otherwise only the branch head counts. `live_reason` is pure; `read_live_refs` runs git.
"""

from __future__ import annotations

import bisect
import logging
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from ci_env.errors import UsageError

logger = logging.getLogger(__name__)

_SHA_TAG = re.compile(r"[0-9a-f]{7,40}")
_GIT_TIMEOUT = 120.0


def slug(ref: str) -> str:
    """GitLab's CI_COMMIT_REF_SLUG: lowercase, non-[a-z0-9] -> '-', 63 bytes, no edge dashes."""
    return re.sub(r"[^a-z0-9]", "-", ref.lower())[:63].strip("-")


@dataclass(frozen=True)
class LiveRefs:
    branches: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    commits: Mapping[str, str] = field(default_factory=dict)  # full SHA -> what keeps it
    _slugs: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _shas: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: derived lookup tables are set once here.
        object.__setattr__(self, "_slugs", {slug(branch): branch for branch in self.branches})
        object.__setattr__(self, "_shas", tuple(sorted(self.commits)))

    def live_reason(self, tag: str) -> str | None:
        """Why `tag` is live ("live branch main", ...), or None when nothing in git keeps it."""
        if tag in self.branches:
            return f"live branch {tag}"
        if tag in self.tags:
            return f"git tag {tag}"
        if tag in self._slugs:
            return f"slug of live branch {self._slugs[tag]}"
        if _SHA_TAG.fullmatch(tag):
            index = bisect.bisect_left(self._shas, tag)
            if index < len(self._shas) and self._shas[index].startswith(tag):
                return f"commit of {self.commits[self._shas[index]]}"
        return None


def parse_ls_remote(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """`git ls-remote` output -> (branch -> head SHA, tag -> commit SHA, peeled when annotated)."""
    branches: dict[str, str] = {}
    tags: dict[str, str] = {}
    for line in text.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            branches[ref.removeprefix("refs/heads/")] = sha
        elif ref.startswith("refs/tags/"):
            name = ref.removeprefix("refs/tags/")
            # `v1^{}` is the commit an annotated tag points at; it wins over the tag object.
            if name.endswith("^{}"):
                tags[name.removesuffix("^{}")] = sha
            else:
                tags.setdefault(name, sha)
    return branches, tags


def _git(git_dir: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", git_dir, *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(
            f"keep.git: cannot run git in {git_dir!r} ({error})",
            "install git, or drop keep.git from the policy",
        ) from None


def _recent(git_dir: str, sha: str, count: int) -> list[str]:
    """The last `count` commits up to `sha` that the local clone has (just `sha` otherwise)."""
    if count <= 1:
        return [sha]
    result = _git(git_dir, "rev-list", f"--max-count={count}", sha)
    if result.returncode != 0:
        return [sha]
    return result.stdout.split() or [sha]


def read_live_refs(git_dir: str, commits_per_branch: int) -> LiveRefs:
    """Ask `origin` for its branches and tags; a failure is a usage error, never 'nothing live'."""
    result = _git(git_dir, "ls-remote", "--heads", "--tags", "origin")
    if result.returncode != 0:
        raise UsageError(
            f"keep.git: `git ls-remote origin` failed in {git_dir!r}: {result.stderr.strip()}",
            "run cleanup in a checkout whose `origin` is reachable (set --git-dir), "
            "or drop keep.git",
        )
    branches, tags = parse_ls_remote(result.stdout)
    commits: dict[str, str] = {}
    for name, sha in tags.items():
        commits[sha] = f"git tag {name}"
    for name, head in branches.items():
        for sha in _recent(git_dir, head, commits_per_branch):
            commits[sha] = f"live branch {name}"
    logger.debug(
        "keep.git: %d branches, %d tags, %d commits", len(branches), len(tags), len(commits)
    )
    return LiveRefs(frozenset(branches), frozenset(tags), commits)
