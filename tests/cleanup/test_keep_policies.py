"""werf's keepPolicies, pure: the scenarios of the research note (werf's e2e policy sets and
its docs' "priority" example) on hand-built histories; the CLI tests replay them on real git."""

from datetime import UTC, datetime, timedelta

from ci_env.cleanup import keep_policies as kp
from ci_env.cleanup.keep_policies import Commit, GitRef, History, KeepPolicy, Limit, Operator
from ci_env.cleanup.keep_policies import RefKind as K

NOW = datetime(2025, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)


def sha(name: str) -> str:
    return (name.encode().hex() + "0" * 40)[:40]


def linear(*names_ages: tuple[str, timedelta]) -> dict[str, Commit]:
    commits: dict[str, Commit] = {}
    parent: tuple[str, ...] = ()
    for name, age in names_ages:
        commits[sha(name)] = Commit(NOW - age, parent)
        parent = (sha(name),)
    return commits


def branch(name: str, head: str, commits: dict[str, Commit]) -> GitRef:
    return GitRef(K.BRANCH, name, sha(head), commits[sha(head)].date)


def kept(policies: tuple[KeepPolicy, ...], history: History, images: dict[str, str]) -> set[str]:
    """images: image name -> commit name; returns the kept image names."""
    commits = {name: frozenset({sha(commit)}) for name, commit in images.items()}
    return set(kp.kept_images(policies, history, commits, NOW))


def test_w1_w2_only_the_named_origin_branch() -> None:
    commits = linear(("c0", H))
    policy = (KeepPolicy(K.BRANCH, "test", images=Limit(last=-1)),)
    assert kept(policy, History((branch("test", "c0", commits),), commits), {"i": "c0"}) == {"i"}
    other = History((branch("some_branch", "c0", commits),), commits)
    assert kept(policy, other, {"i": "c0"}) == set()


def test_w3_images_on_one_commit_count_as_one() -> None:
    commits = linear(("c0", H))
    policy = (KeepPolicy(K.BRANCH, "/.*/", images=Limit(last=1)),)
    history = History((branch("test", "c0", commits),), commits)
    assert kept(policy, history, {"a": "c0", "b": "c0"}) == {"a", "b"}


def test_w4_last_zero_keeps_none() -> None:
    commits = linear(("c0", H))
    policy = (KeepPolicy(K.BRANCH, "test", images=Limit(last=0)),)
    assert kept(policy, History((branch("test", "c0", commits),), commits), {"i": "c0"}) == set()


def test_w5_images_in() -> None:
    policy = (KeepPolicy(K.BRANCH, "test", images=Limit(last=1, within=24 * H)),)
    for age, expected in ((25 * H, set()), (23 * H, {"i"})):
        commits = linear(("c0", age))
        history = History((branch("test", "c0", commits),), commits)
        assert kept(policy, history, {"i": "c0"}) == expected


def test_w6_references_in() -> None:
    policy = (KeepPolicy(K.BRANCH, "test", Limit(within=12 * H)),)
    for age, expected in ((13 * H, set()), (11 * H, {"i"})):
        commits = linear(("c0", age))
        history = History((branch("test", "c0", commits),), commits)
        assert kept(policy, history, {"i": "c0"}) == expected


def test_w7_references_last_and_in_with_or_and_and() -> None:
    commits = {**linear(("a", 13 * H)), **linear(("b", 11 * H)), **linear(("c", 0 * H))}
    refs = tuple(branch(f"test{i}", n, commits) for i, n in enumerate("abc", 1))
    history = History(refs, commits)
    images = {"A": "a", "B": "b", "C": "c"}
    for operator, expected in ((Operator.OR, {"B", "C"}), (Operator.AND, {"C"})):
        policy = (KeepPolicy(K.BRANCH, "/.*/", Limit(1, 12 * H, operator)),)
        assert kept(policy, history, images) == expected


def test_w8_images_last_and_in_with_or_and_and() -> None:
    commits = linear(("c1", 13 * H), ("c2", 11 * H), ("c3", 0 * H))
    history = History((branch("test", "c3", commits),), commits)
    images = {"I1": "c1", "I2": "c2", "I3": "c3"}
    for operator, expected in ((Operator.OR, {"I2", "I3"}), (Operator.AND, {"I3"})):
        policy = (KeepPolicy(K.BRANCH, "test", images=Limit(1, 12 * H, operator)),)
        assert kept(policy, history, images) == expected


def test_w10_the_last_matching_policy_wins() -> None:
    days = [(f"m{i}", timedelta(days=11 - i)) for i in range(1, 8)]
    days += [(f"f{i}", timedelta(days=4 - i)) for i in range(1, 4)]
    commits = linear(*days)
    history = History((branch("master", "m7", commits), branch("feature", "f3", commits)), commits)
    policy = (
        KeepPolicy(K.BRANCH, "/.*/", images=Limit(last=1)),
        KeepPolicy(K.BRANCH, "master", images=Limit(last=5)),
    )
    images = {name: name for name, _ in days}
    assert kept(policy, history, images) == {"m3", "m4", "m5", "m6", "m7", "f3"}


def test_tags_reach_only_their_commit_and_defaults_match_werf() -> None:
    commits = linear(("c1", 50 * H), ("c2", 40 * H))
    tag = GitRef(K.TAG, "v1", sha("c1"), NOW - H)
    history = History((tag,), commits)
    assert kept(kp.DEFAULT_POLICIES, history, {"I1": "c1", "I2": "c2"}) == {"I1"}
    assert [p.describe() for p in kp.DEFAULT_POLICIES] == [
        "tag /.*/, limit last 10, imagesPerReference last 1",
        "branch /.*/, limit in 168h last 10 And, imagesPerReference in 168h last 2 And",
        "branch /^(main|master|staging|production)$/, imagesPerReference last 10",
    ]


def test_reason_names_commit_reference_and_policy() -> None:
    commits = linear(("c0", H))
    history = History((branch("main", "c0", commits),), commits)
    got = kp.kept_images(kp.DEFAULT_POLICIES, history, {"i": frozenset({sha("c0")})}, NOW)
    assert got == {
        "i": f"kept: commit {sha('c0')[:7]} of branch main (keep.git policy 3: branch "
        "/^(main|master|staging|production)$/, imagesPerReference last 10)"
    }


def test_an_image_on_several_commits_counts_at_its_newest_reached_one() -> None:
    commits = linear(("c1", 3 * H), ("c2", 2 * H), ("c3", H))
    history = History((branch("test", "c2", commits),), commits)  # c3 is not reached
    both = {"multi": frozenset({sha("c1"), sha("c2"), sha("c3")}), "old": frozenset({sha("c1")})}
    got = kp.kept_images((KeepPolicy(K.BRANCH, "test"),), history, both, NOW)
    assert set(got) == {"multi"}
    assert f"commit {sha('c2')[:7]}" in got["multi"]


def test_or_with_fewer_images_than_last_keeps_every_reached_one() -> None:
    commits = linear(("c1", 30 * H), ("c2", 20 * H))
    history = History((branch("test", "c2", commits),), commits)
    policy = (KeepPolicy(K.BRANCH, "test", images=Limit(5, H, Operator.OR)),)
    assert kept(policy, history, {"I1": "c1", "I2": "c2"}) == {"I1", "I2"}
    policy = (KeepPolicy(K.BRANCH, "test", images=Limit(5, H, Operator.AND)),)
    assert kept(policy, history, {"I1": "c1", "I2": "c2"}) == set()
