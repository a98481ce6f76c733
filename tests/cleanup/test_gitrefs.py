"""keep.git against real git: a bare `origin` and a shallow clone of it."""

import subprocess
from pathlib import Path

import pytest

from ci_env.cleanup import gitrefs
from ci_env.errors import UsageError


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("main", "main"),
        ("feature/Add_Login", "feature-add-login"),
        ("-x-", "x"),
        ("a" * 70, "a" * 63),
        ("release/1.2", "release-1-2"),
    ],
)
def test_slug_like_gitlab(ref: str, expected: str) -> None:
    assert gitrefs.slug(ref) == expected


def test_parse_ls_remote_peels_annotated_tags() -> None:
    text = "aaa\trefs/heads/main\nbbb\trefs/tags/v1\nccc\trefs/tags/v1^{}\nddd\tHEAD\n"
    assert gitrefs.parse_ls_remote(text) == ({"main": "aaa"}, {"v1": "ccc"})


def test_live_refs_from_a_shallow_clone(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    shas = []
    for index in range(5):
        (work / "f").write_text(str(index))
        git(work, "add", "f")
        git(work, "commit", "-q", "-m", f"c{index}")
        shas.append(git(work, "rev-parse", "HEAD"))
    git(work, "tag", "-a", "v1.0", "-m", "release", shas[1])
    git(work, "branch", "feature/Login", shas[2])
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(origin))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "3", f"file://{origin}", str(clone))
    git(origin, "branch", "-D", "feature/Login")  # deleted after the clone: not live any more

    live = gitrefs.read_live_refs(str(clone), commits_per_branch=2)
    assert live.branches == {"main"} and live.tags == {"v1.0"}
    assert live.live_reason("main") == "live branch main"
    assert live.live_reason("v1.0") == "git tag v1.0"
    assert live.live_reason(shas[4][:7]) == "commit of live branch main"
    assert live.live_reason(shas[3]) == "commit of live branch main"
    assert live.live_reason(shas[1][:10]) == "commit of git tag v1.0"
    assert live.live_reason(shas[0][:7]) is None  # older than 2 commits
    assert live.live_reason("feature-login") is None  # branch gone from origin


def test_no_origin_is_a_usage_error(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(UsageError) as error:
        gitrefs.read_live_refs(str(tmp_path), 10)
    assert "ls-remote" in error.value.message
