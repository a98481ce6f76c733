"""Real git repositories for keep.git tests: a bare `origin` whose commits carry the dates a
test chooses (GIT_COMMITTER_DATE / GIT_AUTHOR_DATE), annotated and lightweight tags, and
clones of it (full or shallow). Commits are made with plumbing (`commit-tree`), so root
commits, merges and any parentage are one call each."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path


def _env(home: Path, when: dt.datetime | None = None) -> dict[str, str]:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
    }
    if when is not None:
        stamp = f"{int(when.timestamp())} +0000"
        env |= {"GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_DATE": stamp}
    return env


def git(cwd: Path, *args: str, when: dt.datetime | None = None, feed: str = "") -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_env(cwd, when),
        input=feed,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


class Origin:
    """A bare repository standing in for the CI project's `origin`."""

    def __init__(self, root: Path) -> None:
        self.path = root / "origin.git"
        self.path.mkdir(parents=True)
        git(self.path, "init", "-q", "--bare", "-b", "main")
        self.tree = git(self.path, "hash-object", "-t", "tree", "-w", "--stdin")  # empty tree

    def commit(self, message: str, when: dt.datetime, *parents: str) -> str:
        links = [arg for parent in parents for arg in ("-p", parent)]
        return git(self.path, "commit-tree", self.tree, *links, "-m", message, when=when)

    def branch(self, name: str, sha: str) -> None:
        git(self.path, "update-ref", f"refs/heads/{name}", sha)

    def delete_branch(self, name: str) -> None:
        git(self.path, "update-ref", "-d", f"refs/heads/{name}")

    def tag(self, name: str, sha: str, *, annotated_at: dt.datetime | None = None) -> None:
        """A lightweight tag, or an annotated one whose tagger date is `annotated_at`."""
        if annotated_at is None:
            git(self.path, "tag", name, sha)
        else:
            git(self.path, "tag", "-a", name, "-m", name, sha, when=annotated_at)

    def clone(self, dest: Path, *, depth: int | None = None, branch: str = "") -> Path:
        shallow = ["--depth", str(depth)] if depth else []
        one = ["--branch", branch, "--single-branch"] if branch else []
        git(dest.parent, "clone", "-q", *shallow, *one, f"file://{self.path}", str(dest))
        return dest

    def linear(self, branch: str, *dated: tuple[str, dt.datetime]) -> list[str]:
        """Commits one after another on `branch` (created or moved); returns their SHAs."""
        shas: list[str] = []
        for message, when in dated:
            shas.append(self.commit(message, when, *shas[-1:]))
        self.branch(branch, shas[-1])
        return shas
