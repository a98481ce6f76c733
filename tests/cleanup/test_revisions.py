"""Which commit an image was built from: revision label first, then SHA tags, then ref names."""

import re
from datetime import UTC, datetime

import pytest

from ci_env.cleanup.keep_policies import Commit, GitRef, History, RefKind
from ci_env.cleanup.revisions import CommitFinder, metadata_action, slug
from ci_env.registries.base import Image

WHEN = datetime(2025, 6, 1, tzinfo=UTC)
A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
B = "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
TWIN = "a1b2c3d4e5f6ffff293a4b5c6d7e8f9012345678"  # shares A's first 12 characters
HISTORY = History(
    (
        GitRef(RefKind.BRANCH, "feature/Add_Login", A, WHEN),
        GitRef(RefKind.BRANCH, "main", B, WHEN),
        GitRef(RefKind.TAG, "v1.2.3", A, WHEN),
    ),
    {A: Commit(WHEN), B: Commit(WHEN), TWIN: Commit(WHEN)},
)
FINDER = CommitFinder(HISTORY, [re.compile(r".+-([0-9a-f]{7,40})")])


def found(*tags: str, revision: str | None = None) -> tuple[set[str], str]:
    commits, how = FINDER.commits(Image("sha256:x", tags, revision=revision))
    return set(commits), how


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
    assert slug(ref) == expected


def test_metadata_action_spelling_keeps_case() -> None:
    assert metadata_action("feature/Add_Login") == "feature-Add_Login"


def test_the_revision_label_wins_and_may_be_dirty() -> None:
    assert found("main", f"sha-{A[:7]}", revision=B) == ({B}, "org.opencontainers.image.revision")
    assert found(revision=B + "-dirty") == ({B}, "org.opencontainers.image.revision")


def test_a_revision_not_in_the_clone_is_ignored() -> None:
    # Inherited from a FROM image built elsewhere: fall through to the tags.
    assert found("main", revision="f" * 40) == ({B}, "ref name")


def test_metadata_action_tag_set() -> None:
    assert found(f"sha-{B[:7]}", "1.2.3", "main") == ({B}, "tag")
    assert found("1.2.3") == ({A}, "ref name")  # type=semver drops the v
    assert found("v1.2.3") == ({A}, "ref name")


def test_sha_tags_user_patterns_and_ambiguity() -> None:
    assert found(A) == ({A}, "tag")
    assert found(f"main-{B[:8]}") == ({B}, "tag")
    assert found(A[:12]) == (set(), "ref name")  # A and TWIN share it: ambiguous, ignored
    assert found(A[:13]) == ({A}, "tag")


def test_branch_names_and_slugs() -> None:
    assert found("feature-add-login") == ({A}, "ref name")
    assert found("feature-Add_Login") == ({A}, "ref name")
    assert found("nightly") == (set(), "ref name")
