"""The pure policy: one reason per tag, time read only where it matters."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ci_env.cleanup import policy
from ci_env.cleanup.keep_policies import Commit, GitRef, History, KeepPolicy, RefKind
from ci_env.cleanup.plan import Action, PlanItem, RepoPlan
from ci_env.cleanup.rules import GitRule, Rules, Untagged
from ci_env.inuse.base import RepoUse
from ci_env.registries.base import Image
from tests.support.fake_backend import digest

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def image(name: str, *tags: str, age: timedelta | None = None) -> Image:
    return Image(digest(name), tags, pushed=None if age is None else NOW - age)


def decide(images: list[Image], rules: Rules, history: History | None = None) -> dict[str, str]:
    items = policy.evaluate(images, rules, NOW, history)
    return {item.tag or item.digest: item.reason for item in items}


def actions(items: list[PlanItem]) -> dict[str | None, Action]:
    return {item.tag: item.action for item in items}


def test_newer_than_default_2h_and_older_than() -> None:
    images = [
        image("a", "new", age=timedelta(minutes=30)),
        image("b", "mid", age=timedelta(days=3)),
        image("c", "old", age=timedelta(days=40)),
    ]
    got = decide(images, Rules(delete_older_than=timedelta(days=30)))
    assert got == {
        "new": "kept: newer than 2h",
        "mid": "kept: not older than 30d",
        "old": "deleted: older than 30d",
    }


def test_keep_latest_counts_images_not_tags() -> None:
    images = [
        image("a", "a1", "a2", "a3", age=timedelta(days=1)),
        image("b", "b1", age=timedelta(days=2)),
        image("c", "c1", age=timedelta(days=3)),
    ]
    got = decide(images, Rules(keep_latest=2))
    assert got["a1"] == got["a2"] == got["a3"] == "kept: one of the 2 latest"
    assert got["b1"] == "kept: one of the 2 latest"
    assert got["c1"] == "deleted: no keep rule matched"


def test_name_rules_and_latest() -> None:
    images = [
        image("a", "latest", "v1.0.0", age=timedelta(days=9)),
        image("b", "pr-1", age=timedelta(days=9)),
        image("c", "release-7", age=timedelta(days=9)),
        image("d", "hotfix", age=timedelta(days=9)),
        image("e", "pr-2", age=timedelta(days=9)),
    ]
    rules = Rules(
        delete_tags=("pr-.*", "release-.*", "latest", "v.*"),
        keep_tags=("release-.*",),
        keep_list=frozenset({"pr-2"}),
    )
    got = decide(images, rules)
    assert got["hotfix"] == "kept: does not match delete.tags"
    assert got["release-7"] == "kept: matches keep.tags 'release-.*'"
    assert got["pr-2"] == "kept: in the keep list"
    assert got["pr-1"] == "deleted: matches delete.tags"
    assert got["latest"] == "deleted: matches delete.tags"  # named by delete.tags
    assert decide(images, Rules())["latest"].startswith("kept: latest")


def test_keep_semver_highest() -> None:
    images = [
        image(n, t, age=timedelta(days=9))
        for n, t in [
            ("a", "v1.2.0"),
            ("b", "1.10.0"),
            ("c", "v2.0.0-rc.1"),
            ("d", "v2.0.0"),
            ("e", "v1.9.9"),
            ("f", "nightly"),
        ]
    ]
    got = decide(images, Rules(keep_semver=3))
    kept = {t for t, r in got.items() if r.startswith("kept: one of the 3 highest")}
    assert kept == {"v2.0.0", "v2.0.0-rc.1", "1.10.0"}
    assert got["v1.2.0"].startswith("deleted")
    assert got["nightly"].startswith("deleted")


def test_keep_git_keeps_whole_images_with_the_commit_and_policy_in_the_reason() -> None:
    head, old = "0123456789abcdef0123456789abcdef01234567", "89abcdef" * 5
    commits = {old: Commit(ago(days=9)), head: Commit(ago(days=8), (old,))}
    history = History((GitRef(RefKind.BRANCH, "main", head, ago(days=8)),), commits)
    rule = GitRule((KeepPolicy(RefKind.BRANCH, "main"),))
    images = [
        replace(image("a", "main", "custom", "sha-0123456", age=timedelta(days=9)), revision=head),
        image("b", old[:7], age=timedelta(days=9)),
        image("c", "feature", age=timedelta(days=9)),
    ]
    got = decide(images, Rules(keep_git=rule), history)
    reason = "kept: commit 0123456 of branch main (keep.git policy 1: branch main, "
    assert got["main"] == got["custom"] == got["sha-0123456"]
    assert got["main"].startswith(reason)
    assert got[old[:7]].startswith("deleted")
    assert got["feature"].startswith("deleted")
    # Name rules still pick single tags, and come first.
    got = decide(images, Rules(keep_git=rule, keep_tags=("custom",)), history)
    assert got["custom"] == "kept: matches keep.tags 'custom'"
    assert got["main"].startswith(reason)


def test_revisions_are_read_only_where_keep_git_can_change_the_outcome() -> None:
    images = [
        image("a", "v1", "pr-1"),
        image("b", "v2"),
        image("c", "sha256-" + "c" * 64 + ".sig"),
        replace(image("d", "pr-2"), revision="0" * 40),
        image("u"),
    ]
    rules = Rules(keep_git=GitRule(), keep_tags=("v.*",))
    assert policy.needs_revision(images, rules) == [images[0]]
    assert policy.needs_revision(images, Rules(keep_tags=("v.*",))) == []


def test_untagged() -> None:
    images = [image("u", age=timedelta(days=9)), image("n", age=timedelta(minutes=1))]
    assert decide(images, Rules())[digest("u")] == "kept: untagged (untagged: keep)"
    got = decide(images, Rules(untagged=Untagged.DELETE))
    assert got[digest("u")] == "deleted: untagged"
    assert got[digest("n")] == "kept: newer than 2h"


def test_unknown_time_is_kept_never_old() -> None:
    got = decide([image("a", "x")], Rules(delete_older_than=timedelta(days=1)))
    assert got == {"x": "kept: no push or creation time known"}


def test_needs_time_only_for_undecided_images() -> None:
    images = [image("a", "keepme"), image("b", "pr-1"), image("c", "pr-2", age=timedelta(days=1))]
    rules = Rules(delete_tags=("pr-.*",))
    assert policy.needs_time(images, rules) == [images[1]]
    # Without time rules nothing is read at all.
    assert policy.needs_time(images, rules.replace(keep_newer_than=timedelta(0))) == []
    items = policy.evaluate(images, rules.replace(keep_newer_than=timedelta(0)), NOW)
    assert actions(items) == {"keepme": Action.KEEP, "pr-1": Action.DELETE, "pr-2": Action.DELETE}


def test_referrer_tags_are_not_counted_as_latest() -> None:
    subject = digest("a")
    images = [
        image("a", "app", age=timedelta(days=5)),
        image("s", subject.replace(":", "-") + ".sig", age=timedelta(days=1)),
    ]
    got = decide(images, Rules(keep_latest=1))
    assert got["app"] == "kept: one of the 1 latest"
    assert policy.referrer_subject(subject.replace(":", "-") + ".att") == subject
    assert policy.referrer_subject("sha256-short") is None


def test_kept_by_name_needs_no_digest_only_when_nothing_can_go() -> None:
    """A repository whose every tag the name rules keep is planned from names alone; one tag
    left to the other rules (here: matching delete.tags) and the full plan is needed."""
    rules = Rules(delete_tags=("pr-.*",), keep_tags=("main",), keep_semver=1)
    items = policy.kept_by_name(["main", "v1.0.0", "latest", "nightly"], rules)
    assert items is not None
    assert {i.tag: (i.digest, i.action, i.reason) for i in items} == {
        "latest": ("", Action.KEEP, "kept: does not match delete.tags"),
        "main": ("", Action.KEEP, "kept: does not match delete.tags"),
        "nightly": ("", Action.KEEP, "kept: does not match delete.tags"),
        "v1.0.0": ("", Action.KEEP, "kept: does not match delete.tags"),
    }
    assert policy.kept_by_name(["main", "pr-3"], rules) is None
    assert policy.kept_by_name(["v1", "v2"], Rules(keep_semver=1)) is None  # v1 may go by time
    assert policy.kept_by_name([], rules) == []


def test_an_image_in_use_keeps_every_tag_naming_the_workload() -> None:
    images = [
        image("a", "pr-1", "pr-1-retag", age=timedelta(days=9)),
        image("b", "pr-2", age=timedelta(days=9)),
        image("c", "pr-3", age=timedelta(days=9)),
        image("d", age=timedelta(days=9)),
    ]
    use = RepoUse(
        tags={"pr-1": "in use by deployment prod/web (context a)"},
        digests={digest("b"): "in use by pod prod/x (context a)", digest("d"): "in use by job"},
    )
    rules = Rules(delete_tags=("pr-.*",), untagged=Untagged.DELETE)
    items = policy.evaluate(images, rules, NOW, None, use)
    got = {item.tag or item.digest: item.reason for item in items}
    assert got == {
        "pr-1": "kept: in use by deployment prod/web (context a)",
        "pr-1-retag": "kept: in use by deployment prod/web (context a)",
        "pr-2": "kept: in use by pod prod/x (context a)",
        "pr-3": "deleted: matches delete.tags",
        digest("d"): "kept: in use by job",
    }
    assert policy.kept_by_name(["pr-1"], rules, use=use) is not None
    assert policy.kept_by_name(["pr-1", "pr-3"], rules, use=use) is None


def test_a_saved_plan_is_held_against_what_is_in_use_now() -> None:
    keep = PlanItem(digest("k"), "v1", Action.KEEP, "kept: matches keep.tags")
    untag = PlanItem(digest("k"), "pr-1", Action.UNTAG, "untagged: ...")
    gone = PlanItem(digest("g"), "pr-2", Action.DELETE, "deleted: matches delete.tags")
    repo = RepoPlan("r.test", "app", "distribution", (keep, untag, gone))
    now = policy.recheck_in_use(repo, RepoUse(tags={"v1": "in use by pod a/b (context c)"}))
    assert [(i.tag, i.action) for i in now.items] == [
        ("v1", Action.KEEP),
        ("pr-1", Action.KEEP),
        ("pr-2", Action.DELETE),
    ]
    assert now.items[1].reason == "kept: in use by pod a/b (context c) (since planning)"
    closed = policy.recheck_in_use(repo, RepoUse(digests={digest("g"): "in use by job a/j"}))
    assert closed.error is not None
    assert closed.operations() == []
    assert "deletes an image in use since planning: pr-2 (in use by job a/j)" in closed.error
    assert policy.recheck_in_use(repo, RepoUse()) is repo


def test_non_ascii_digits_in_a_tag_are_not_a_version() -> None:
    # A hostile registry may list any text as a tag; `\d` would take "²" and int() fail.
    assert policy._semver_key("1.0.\u00b2") is None
    assert policy._semver_key("\u0661.2.3") is None  # ARABIC-INDIC DIGIT ONE
