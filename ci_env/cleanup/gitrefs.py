"""The git side of `keep.git`: origin's branches and tags, and the commit graph behind them.

Like werf, the clone is first brought up to date with origin (branches into
`refs/remotes/origin/*`, tags pruned to origin's, the history unshallowed), because CI clones
are shallow and often hold one branch; a history that is still shallow afterwards is an error,
never taken for the whole one. `read_history` runs git; the decisions are in `keep_policies`.
"""

from __future__ import annotations

import logging
import re
import subprocess
from datetime import UTC, datetime

from ci_env.cleanup.keep_policies import Commit, GitRef, History, RefKind
from ci_env.errors import UsageError

logger = logging.getLogger(__name__)

_GIT_TIMEOUT = 300.0
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_FETCH_HINT = (
    "keep.git needs origin's full history: check out with `fetch-depth: 0` (GitHub "
    "actions/checkout) or `GIT_DEPTH: 0` (GitLab CI), or run `git fetch --unshallow origin`"
)
# `%(*...)` is the object an annotated tag points at; empty for a branch or lightweight tag.
_REF_FORMAT = "%09".join(
    ("%(refname)", "%(objecttype)", "%(objectname)", "%(*objecttype)", "%(*objectname)")
    + ("%(creatordate:unix)",)  # tagger date of an annotated tag, else the committer date
)


def _git(git_dir: str, *args: str, feed: str = "") -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", git_dir, *args],
            input=feed,
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


def _headline(stderr: str) -> str:
    """git's first `fatal:`/`error:` line (the rest is advice), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (errors or lines or ["no message"])[0 if errors else -1]


def scrub(text: str) -> str:
    """Drop user:password from URLs: CI clones often carry a token in origin's URL (GitLab's
    `gitlab-ci-token:<job token>@`); git hides it in most messages, this makes sure."""
    return _USERINFO.sub(r"\1***@", text)


def _checked(git_dir: str, *args: str, hint: str, feed: str = "") -> str:
    result = _git(git_dir, *args, feed=feed)
    if result.returncode != 0:
        command = f"git {args[0]}" + (" origin" if "origin" in args else "")
        problem = scrub(_headline(result.stderr))
        raise UsageError(f"keep.git: `{command}` failed in {git_dir!r}: {problem}", hint)
    return result.stdout


def is_shallow(git_dir: str) -> bool:
    out = _checked(
        git_dir,
        "rev-parse",
        "--is-shallow-repository",
        hint="run cleanup in a git checkout (set --git-dir), or drop keep.git",
    )
    return out.strip() == "true"


def fetch_origin(git_dir: str) -> None:
    """Origin's branches and tags, pruned, with the whole history (werf does the same)."""
    # Explicit refspecs: `--tags` next to `--prune-tags` keeps local tags origin lacks.
    args = ["fetch", "--quiet", "--prune", "--force"]
    if is_shallow(git_dir):
        logger.info("keep.git: the clone is shallow; fetching origin's full history")
        args.append("--unshallow")
    _checked(
        git_dir,
        *args,
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
        hint=_FETCH_HINT + "; origin must be reachable from this job",
    )
    if is_shallow(git_dir):
        raise UsageError(f"keep.git: the clone in {git_dir!r} is still shallow", _FETCH_HINT)


def _when(text: str) -> datetime:
    return datetime.fromtimestamp(int(text or 0), UTC)


def parse_refs(text: str) -> list[GitRef]:
    """`git for-each-ref` lines (see _REF_FORMAT) -> origin branches and tags on commits."""
    refs: list[GitRef] = []
    for line in text.splitlines():
        name, kind, sha, peeled_kind, peeled, date = (line.split("\t") + [""] * 6)[:6]
        if name.startswith("refs/remotes/origin/") and kind == "commit":
            branch = name.removeprefix("refs/remotes/origin/")
            if branch != "HEAD":
                refs.append(GitRef(RefKind.BRANCH, branch, sha, _when(date)))
        elif name.startswith("refs/tags/"):
            commit = sha if kind == "commit" else peeled if peeled_kind == "commit" else ""
            if commit:  # a tag of a tree, a blob or a tag of a tag points at no commit
                refs.append(
                    GitRef(RefKind.TAG, name.removeprefix("refs/tags/"), commit, _when(date))
                )
    return refs


def parse_log(text: str) -> dict[str, Commit]:
    """`git log --format='%H %ct %P'` -> SHA -> Commit(committer date, parents)."""
    commits: dict[str, Commit] = {}
    for line in text.splitlines():
        sha, date, *parents = line.split()
        commits[sha] = Commit(_when(date), tuple(parents))
    return commits


def read_history(git_dir: str, *, fetch: bool = True) -> History:
    """Origin's references and every commit reachable from them."""
    if fetch:
        fetch_origin(git_dir)
    elif is_shallow(git_dir):
        raise UsageError(f"keep.git: the clone in {git_dir!r} is shallow", _FETCH_HINT)
    hint = "run cleanup in a git checkout with an `origin` remote (set --git-dir)"
    listed = _checked(
        git_dir,
        "for-each-ref",
        f"--format={_REF_FORMAT}",
        "refs/remotes/origin",
        "refs/tags",
        hint=hint,
    )
    refs = parse_refs(listed)
    heads = "".join(sorted({ref.commit + "\n" for ref in refs}))  # on stdin: no argv limit
    log = (
        _checked(git_dir, "log", "--stdin", "--format=%H %ct %P", hint=hint, feed=heads)
        if heads
        else ""
    )
    commits = parse_log(log)
    logger.debug("keep.git: %d references, %d commits", len(refs), len(commits))
    return History(tuple(refs), commits)
