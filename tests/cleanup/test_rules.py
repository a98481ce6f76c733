from datetime import timedelta
from pathlib import Path

import pytest

from ci_env.cleanup import rules
from ci_env.cleanup.keep_policies import DEFAULT_POLICIES, KeepPolicy, Limit, Operator, RefKind
from ci_env.cleanup.rules import Broken, GitRule, KubeRule, Rules, Untagged, commits_per_branch
from ci_env.errors import UsageError

FULL = """\
version: 1
keep:
  latest: 10
  newer_than: 3h
  tags: ["v.*", main]
  list: keep.txt
  semver: 5
  git: {commits_per_branch: 4}
delete:
  tags: ["pr-.*"]
  older_than: 30d
untagged: delete
"""


def test_full_policy() -> None:
    got = rules.parse(FULL)
    assert got == Rules(
        keep_latest=10,
        keep_newer_than=timedelta(hours=3),
        keep_tags=("v.*", "main"),
        keep_list_file="keep.txt",
        keep_semver=5,
        keep_git=GitRule(commits_per_branch(4)),
        delete_tags=("pr-.*",),
        delete_older_than=timedelta(days=30),
        untagged=Untagged.DELETE,
    )


def test_broken_skip() -> None:
    assert rules.parse("version: 1\nbroken: skip\n").broken is Broken.SKIP
    assert rules.parse("version: 1\n").broken is Broken.FAIL


def test_defaults() -> None:
    got = rules.parse("version: 1\n")
    assert got.keep_newer_than == timedelta(hours=2)
    assert got.untagged is Untagged.KEEP
    assert got.delete_tags == ()
    assert got.keep_git is None


def test_git_true_and_single_pattern() -> None:
    got = rules.parse("version: 1\nkeep:\n  git: true\n  tags: release\n")
    assert got.keep_git == GitRule()
    assert got.keep_tags == ("release",)
    assert got.keep_git.policies == DEFAULT_POLICIES


WERF_POLICIES = """\
version: 1
keep:
  git:
    commit_tags: ['.+-([0-9a-f]{7,40})']
    policies:
      - references:
          tag: /.*/
          limit: {last: 10}
      - references:
          branch: /.*/
          limit: {last: 10, in: 168h, operator: And}
        imagesPerReference: {last: 2, in: 1h30m, operator: Or}
      - references: {branch: main}
        imagesPerReference: {last: -1}
"""


def test_werf_keep_policies_verbatim() -> None:
    got = rules.parse(WERF_POLICIES).keep_git
    assert got == GitRule(
        (
            KeepPolicy(RefKind.TAG, "/.*/", Limit(last=10)),
            KeepPolicy(
                RefKind.BRANCH,
                "/.*/",
                Limit(10, timedelta(hours=168), Operator.AND),
                Limit(2, timedelta(minutes=90), Operator.OR),
            ),
            KeepPolicy(RefKind.BRANCH, "main", None, Limit(last=-1)),
        ),
        (".+-([0-9a-f]{7,40})",),
    )
    assert got.policies[2].pattern.match("main")
    assert not got.policies[2].pattern.match("mainx")


def test_empty_policies_are_werfs_defaults() -> None:
    got = rules.parse("version: 1\nkeep:\n  git: {policies: []}\n").keep_git
    assert got is not None
    assert got.policies == DEFAULT_POLICIES


def policies(*lines: str) -> str:
    return "version: 1\nkeep:\n  git:\n    policies:\n" + "".join(f"{x}\n" for x in lines)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            policies("      - imagesPerReference: {last: 1}"),
            "line 5: keep.git.policies[0].references: missing",
        ),
        (
            policies("      - references: {branch: a, tag: b}"),
            "line 5: keep.git.policies[0].references: give exactly one of branch or tag",
        ),
        (
            policies("      - references: {branch: a}", "      - references: {tag: '/v[/'}"),
            "line 6: keep.git.policies[1].references.tag: '/v[/' is not a valid regex",
        ),
        (
            policies("      - references: {branch: a, limit: {last: -2}}"),
            "line 5: keep.git.policies[0].references.limit.last: expected a whole number",
        ),
        (
            policies("      - references: {branch: a}", "        imagesPerReference: {in: 2days}"),
            "line 6: keep.git.policies[0].imagesPerReference.in: '2days' is not a duration",
        ),
        (
            policies(
                "      - references: {branch: a}", "        imagesPerReference: {operator: and}"
            ),
            "line 6: keep.git.policies[0].imagesPerReference.operator: 'and' is not And or Or",
        ),
        (
            policies("      - references: {branch: a, limits: {}}"),
            "line 5: keep.git.policies[0].references.limits: unknown key",
        ),
        (policies("      - references: {branch: 7}"), "references.branch: expected text"),
        (
            "version: 1\nkeep:\n  git: {policies: {}}\n",
            "line 3: keep.git.policies: expected a list",
        ),
        (
            "version: 1\nkeep:\n  git: {commit_tags: ['x-[0-9a-f]+']}\n",
            "line 3: keep.git.commit_tags: 'x-[0-9a-f]+' has no group",
        ),
        (
            "version: 1\nkeep:\n  git: {policies: [], commits_per_branch: 3}\n",
            "keep.git.commits_per_branch: cannot go with keep.git.policies",
        ),
    ],
)
def test_keep_policy_errors_name_key_and_line(text: str, where: str) -> None:
    with pytest.raises(UsageError) as error:
        rules.parse(text, source="p.yml")
    assert where in error.value.message, error.value.message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("168h", 168 * 3600), ("1h30m", 5400), ("2.5h", 9000), ("90s", 90), ("7d", 7 * 86400)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert rules.go_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("version: 1\nkeep:\n  lastest: 3\n", "line 3: keep.lastest: unknown key"),
        ("version: 1\nkeep:\n  latest: ten\n", "line 3: keep.latest: expected a whole number"),
        ("version: 1\nkeep:\n  latest: -1\n", "line 3: keep.latest"),
        ("version: 1\ndelete:\n  older_than: 30 days\n", "line 3: delete.older_than"),
        ("version: 1\nkeep:\n  tags: ['v[']\n", "line 3: keep.tags"),
        ("version: 1\nuntagged: sometimes\n", "line 2: untagged"),
        ("version: 1\nbroken: ignore\n", "line 2: broken: 'ignore' is not fail or skip"),
        ("version: 2\n", "line 1: version: unsupported"),
        ("keep: {latest: 1}\n", "version: missing"),
        ("version: 1\nkeep: [1]\n", "line 2: keep: expected a mapping"),
        ("version: 1\nkeep:\n  git: maybe\n", "line 3: keep.git"),
        ("version: 1\nkeep: {\n", "not valid YAML"),
        ("", "empty"),
    ],
)
def test_errors_name_key_and_line(text: str, where: str) -> None:
    with pytest.raises(UsageError) as error:
        rules.parse(text, source="p.yml")
    assert error.value.exit_code == 2
    assert where in error.value.message, error.value.message
    assert error.value.message.startswith("p.yml")


def test_load_and_keep_list(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(FULL)
    assert rules.load(str(policy)).keep_latest == 10
    listing = tmp_path / "keep.txt"
    listing.write_text("a\n\n# comment\nb  # why\n")
    assert rules.load_keep_list(str(listing)) == {"a", "b"}
    with pytest.raises(UsageError):
        rules.load(str(tmp_path / "missing.yml"))
    with pytest.raises(UsageError):
        rules.load_keep_list(str(tmp_path / "missing.txt"))


def test_latest_is_named_only_by_a_pattern_spelling_it() -> None:
    assert not Rules(delete_tags=(".*",)).names_latest
    assert Rules(delete_tags=("latest|pr-.*",)).names_latest


@pytest.mark.parametrize(
    ("body", "kube", "files"),
    [
        ("kubernetes: true", KubeRule(), ()),
        ("kubernetes: false\n    file: a.txt", None, ("a.txt",)),
        (
            "kubernetes: {contexts: [a, b], namespaces: prod}\n    file: [a.txt, b.txt]",
            KubeRule(("a", "b"), ("prod",)),
            ("a.txt", "b.txt"),
        ),
    ],
)
def test_keep_in_use(body: str, kube: KubeRule | None, files: tuple[str, ...]) -> None:
    got = rules.parse(f"version: 1\nkeep:\n  in_use:\n    {body}\n")
    assert got.in_use_kubernetes == kube
    assert got.in_use_files == files


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("kubernetes: maybe", "line 4: keep.in_use.kubernetes: expected true"),
        ("kubernetes: {context: a}", "line 4: keep.in_use.kubernetes.context: unknown key"),
        ("pods: true", "line 4: keep.in_use.pods: unknown key"),
        ("file: 7", "line 4: keep.in_use.file: expected text"),
    ],
)
def test_keep_in_use_errors(body: str, where: str) -> None:
    with pytest.raises(UsageError, match=where):
        rules.parse(f"version: 1\nkeep:\n  in_use:\n    {body}\n")
