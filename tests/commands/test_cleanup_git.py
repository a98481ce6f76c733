"""`ci-env cleanup` with keep.git, end to end: werf's scenarios replayed through the CLI.

Each test builds a bare `origin` with commits dated around now (GIT_COMMITTER_DATE), clones it,
pushes images carrying `org.opencontainers.image.revision` to the real registry and compares
`cleanup --dry-run --report-json` with the set werf keeps. The scenarios are those of
werf's own (github.com/werf/werf: its legacy e2e policy sets W1-W8 and the docs'
priority example W10).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from tests.support import images
from tests.support.clirun import base_env, run_cli
from tests.support.gitrepo import Origin, git
from tests.support.registry import LocalRegistry

REPO = "grp/app"
OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # build time: far outside keep.newer_than
LABEL = "org.opencontainers.image.revision"

pytestmark = pytest.mark.slow


def ago(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)


class Scene:
    """An origin, its clone, the registry and the CLI environment of one test."""

    def __init__(self, tmp_path: Path, registry: LocalRegistry) -> None:
        self.tmp = tmp_path
        self.registry = registry
        self.origin = Origin(tmp_path)
        self.clone: Path | None = None
        config = tmp_path / "docker"
        config.mkdir(mode=0o700)
        entry = {"auths": {registry.host: {"auth": registry.auth_entry()}}}
        (config / "config.json").write_text(json.dumps(entry))
        self.env = base_env(tmp_path, DOCKER_CONFIG=str(config))

    def image(self, sha: str, *tags: str, label: bool = True) -> str:
        """An image built from `sha` (its revision label), pushed under every tag."""
        labels = {LABEL: sha} if label else {}
        digest = images.push_image(
            self.registry, REPO, tags[0], seed=f"{sha} {tags[0]}", created=OLD, via="http",
            labels=labels,
        )  # fmt: skip
        for tag in tags[1:]:
            images.tag(self.registry, REPO, tags[0], tag)
        return digest

    def cleanup(self, *args: str, policy: str | None = None) -> subprocess.CompletedProcess[str]:
        if self.clone is None:
            self.clone = self.origin.clone(self.tmp / "clone")
        extra: list[str] = []
        if policy is not None:
            (self.tmp / "policy.yml").write_text(policy)
            extra = ["--policy", str(self.tmp / "policy.yml")]
        return run_cli(
            "cleanup",
            "--repo", f"{self.registry.host}/{REPO}",
            "--git-dir", str(self.clone),
            "--keep-newer-than", "0s",
            "--report-json", str(self.tmp / "report.json"),
            *extra,
            *args,
            env=self.env,
            timeout=120,
        )  # fmt: skip

    def report(self) -> dict[str, tuple[str, str]]:
        data = json.loads((self.tmp / "report.json").read_text())
        return {
            item["tag"]: (item["action"], item["reason"])
            for repo in data["repositories"]
            for item in repo["items"]
            if item["tag"]
        }

    def kept(self, *args: str, policy: str | None = None) -> set[str]:
        done = self.cleanup("--dry-run", *args, policy=policy)
        assert done.returncode == 0, done.stderr + done.stdout
        return {tag for tag, (action, _) in self.report().items() if action == "kept"}


def git_policy(*lines: str) -> str:
    return "version: 1\nkeep:\n  git:\n    policies:\n" + "".join(f"      {x}\n" for x in lines)


@pytest.fixture
def scene(tmp_path: Path, registry: LocalRegistry) -> Scene:
    return Scene(tmp_path, registry)


BRANCH_TEST_ALL = git_policy("- references: {branch: test}", "  imagesPerReference: {last: -1}")


def test_w1_only_origin_branches_count(scene: Scene) -> None:
    c0 = scene.origin.commit("c0", ago(1))
    scene.origin.branch("test", c0)
    scene.origin.branch("main", c0)
    scene.image(c0, "img")
    assert scene.kept(policy=BRANCH_TEST_ALL) == {"img"}
    assert scene.clone is not None
    git(scene.clone, "branch", "test", "origin/test")  # a local branch `test` stays behind
    scene.origin.delete_branch("test")
    assert scene.kept(policy=BRANCH_TEST_ALL) == set()


def test_w2_another_branch_keeps_nothing(scene: Scene) -> None:
    c0 = scene.origin.commit("c0", ago(1))
    scene.origin.branch("some_branch", c0)
    scene.image(c0, "img")
    assert scene.kept(policy=BRANCH_TEST_ALL) == set()


def test_w3_two_images_on_one_commit_count_as_one(scene: Scene) -> None:
    c0 = scene.origin.commit("c0", ago(1))
    scene.origin.branch("test", c0)
    scene.image(c0, "one")
    scene.image(c0, "two")
    policy = git_policy("- references: {branch: /.*/}", "  imagesPerReference: {last: 1}")
    assert scene.kept(policy=policy) == {"one", "two"}


def test_w4_last_zero_keeps_none(scene: Scene) -> None:
    c0 = scene.origin.commit("c0", ago(1))
    scene.origin.branch("test", c0)
    scene.image(c0, "img")
    policy = git_policy("- references: {branch: test}", "  imagesPerReference: {last: 0}")
    assert scene.kept(policy=policy) == set()


@pytest.mark.parametrize(("hours", "kept"), [(25, False), (23, True)])
def test_w5_images_per_reference_in(scene: Scene, hours: float, kept: bool) -> None:
    c0 = scene.origin.commit("c0", ago(hours))
    scene.origin.branch("test", c0)
    scene.image(c0, "img")
    policy = git_policy("- references: {branch: test}", "  imagesPerReference: {in: 24h}")
    assert scene.kept(policy=policy) == ({"img"} if kept else set())


@pytest.mark.parametrize(("hours", "kept"), [(13, False), (11, True)])
def test_w6_references_limit_in(scene: Scene, hours: float, kept: bool) -> None:
    c0 = scene.origin.commit("c0", ago(hours))
    scene.origin.branch("test", c0)
    scene.image(c0, "img")
    policy = git_policy("- references: {branch: test, limit: {in: 12h}}")
    assert scene.kept(policy=policy) == ({"img"} if kept else set())


@pytest.mark.parametrize(("operator", "expected"), [("Or", {"b", "c"}), ("And", {"c"})])
def test_w7_references_last_and_in(scene: Scene, operator: str, expected: set[str]) -> None:
    for number, (name, hours) in enumerate((("a", 13), ("b", 11), ("c", 0)), 1):
        root = scene.origin.commit(name, ago(hours))  # three unrelated root commits
        scene.origin.branch(f"test{number}", root)
        scene.image(root, name)
    policy = git_policy(
        f"- references: {{branch: /.*/, limit: {{in: 12h, last: 1, operator: {operator}}}}}"
    )
    assert scene.kept(policy=policy) == expected


@pytest.mark.parametrize(("operator", "expected"), [("Or", {"c2", "c3"}), ("And", {"c3"})])
def test_w8_images_per_reference_last_and_in(
    scene: Scene, operator: str, expected: set[str]
) -> None:
    shas = scene.origin.linear("test", ("c1", ago(13)), ("c2", ago(11)), ("c3", ago(0)))
    for name, sha in zip(("c1", "c2", "c3"), shas, strict=True):
        scene.image(sha, name)
    policy = git_policy(
        "- references: {branch: test}",
        f"  imagesPerReference: {{in: 12h, last: 1, operator: {operator}}}",
    )
    assert scene.kept(policy=policy) == expected


def w10_history(scene: Scene) -> None:
    """Linear m1..m7 daily (T-10d..T-4d), then f1..f3 (T-3d..T-1d); master=m7, feature=f3."""
    names = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 4)]
    dated = [(name, ago(24 * (10 - i))) for i, name in enumerate(names)]
    shas = scene.origin.linear("feature", *dated)
    scene.origin.branch("master", shas[6])
    for name, sha in zip(names, shas, strict=True):
        scene.image(sha, name)


W10_KEPT = {"m3", "m4", "m5", "m6", "m7", "f3"}


def test_w10_the_last_matching_policy_wins(scene: Scene) -> None:
    w10_history(scene)
    policy = git_policy(
        "- references: {branch: /.*/}",
        "  imagesPerReference: {last: 1}",
        "- references: {branch: master}",
        "  imagesPerReference: {last: 5}",
    )
    assert scene.kept(policy=policy) == W10_KEPT
    reasons = scene.report()
    assert reasons["m3"][1].startswith("kept: commit ")
    assert "of branch master" in reasons["m3"][1]
    assert "(keep.git policy 2: branch master, imagesPerReference last 5)" in reasons["m3"][1]
    assert reasons["m2"][1] == "deleted: no keep rule matched"


WERF_YAML = """\
project: app
configVersion: 1
cleanup:
  keepImagesBuiltWithinLastNHours: 0
  keepPolicies:
  - references:
      branch: /.*/
    imagesPerReference:
      last: 1
  - references:
      branch: master
    imagesPerReference:
      last: 5
---
image: app
from: alpine:{{ .Values.alpine | default "3.20" }}
"""


def test_werf_config_is_read_as_werf_reads_it(scene: Scene) -> None:
    w10_history(scene)
    (scene.tmp / "werf.yaml").write_text(WERF_YAML)
    assert scene.kept("--werf-config", str(scene.tmp / "werf.yaml")) == W10_KEPT
    scene.env["CIENV_WERF_CONFIG"] = str(scene.tmp / "werf.yaml")
    assert scene.kept() == W10_KEPT


def test_werf_config_errors_name_key_and_line(scene: Scene) -> None:
    bad = WERF_YAML.replace("      last: 5", "      last: 5\n      operator: and")
    (scene.tmp / "werf.yaml").write_text(bad)
    done = scene.cleanup("--werf-config", str(scene.tmp / "werf.yaml"), "--dry-run")
    assert done.returncode == 2
    assert (
        "werf.yaml line 14: cleanup.keepPolicies[1].imagesPerReference.operator: "
        "'and' is not And or Or" in done.stderr
    ), done.stderr
    assert "Traceback" not in done.stderr


def test_policy_file_errors_name_key_and_line(scene: Scene) -> None:
    done = scene.cleanup("--dry-run", policy=git_policy("- references: {brunch: main}"))
    assert done.returncode == 2
    assert "line 5: keep.git.policies[0].references.brunch: unknown key" in done.stderr


def test_defaults_of_keep_git_true_are_werfs(scene: Scene) -> None:
    main = scene.origin.linear("main", *[(f"m{i}", ago(300 - i)) for i in range(12)])
    feature = scene.origin.linear("feature", ("f1", ago(30)), ("f2", ago(20)), ("f3", ago(10)))
    stale = scene.origin.linear("stale", ("s1", ago(200)))  # its head is older than 168h
    scene.origin.tag("v1.0", main[0], annotated_at=ago(100))
    for i, sha in enumerate(main):
        scene.image(sha, f"main-{i}")
    for name, sha in zip(("f1", "f2", "f3"), feature, strict=True):
        scene.image(sha, name)
    scene.image(stale[0], "s1")
    kept = scene.kept("--keep-git")
    # main: 10 images (werf's code; its docs say 2), though its head is older than 168h;
    # feature: 2 images within 168h; stale: no image; tags: the tagged commit's image.
    assert kept == {f"main-{i}" for i in range(2, 12)} | {"main-0", "f2", "f3"}
    assert "of tag v1.0 (keep.git policy 1: tag /.*/" in scene.report()["main-0"][1]


def test_whole_image_is_kept_with_its_custom_tags(scene: Scene) -> None:
    c1, c2 = scene.origin.linear("main", ("c1", ago(3)), ("c2", ago(2)))
    scene.image(c2, "build-77", "custom", "production")
    scene.image(c1, "build-76", "other")
    policy = git_policy("- references: {branch: main}", "  imagesPerReference: {last: 1}")
    assert scene.kept(policy=policy) == {"build-77", "custom", "production"}


def test_shallow_clone_is_deepened_before_deciding(scene: Scene) -> None:
    shas = scene.origin.linear("main", *[(f"c{i}", ago(10 - i)) for i in range(5)])
    for i, sha in enumerate(shas):
        scene.image(sha, f"c{i}")
    scene.clone = scene.origin.clone(scene.tmp / "clone", depth=1, branch="main")
    policy = git_policy("- references: {branch: main}", "  imagesPerReference: {last: 3}")
    assert scene.kept(policy=policy) == {"c2", "c3", "c4"}
    assert git(scene.clone, "rev-parse", "--is-shallow-repository") == "false"


def test_shallow_clone_without_origin_stops_and_deletes_nothing(scene: Scene) -> None:
    shas = scene.origin.linear("main", ("c0", ago(3)), ("c1", ago(2)))
    scene.image(shas[0], "c0")
    scene.clone = scene.origin.clone(scene.tmp / "clone", depth=1)
    git(scene.clone, "remote", "set-url", "origin", str(scene.tmp / "gone.git"))
    done = scene.cleanup(policy="version: 1\nkeep:\n  git: true\n")
    assert done.returncode == 2, done.stdout
    assert "fetch-depth: 0" in done.stderr
    assert "GIT_DEPTH: 0" in done.stderr
    assert images.list_tags(scene.registry, REPO) == ["c0"]


def test_metadata_action_tags_and_annotations(scene: Scene) -> None:
    c0, c1, c2 = scene.origin.linear("main", ("c0", ago(30)), ("c1", ago(20)), ("c2", ago(10)))
    scene.origin.tag("v1.2.3", c1, annotated_at=ago(15))
    # docker/metadata-action: sha-<7>, the semver without its v, the branch; revision as a
    # manifest annotation (and, for the index, an index annotation), no config label.
    release = images.push_image(
        scene.registry, REPO, "sha-" + c1[:7], seed="c1", created=OLD, via="http",
        annotations={LABEL: c1},
    )  # fmt: skip
    images.tag(scene.registry, REPO, release, "1.2.3")
    child = images.push_image(scene.registry, REPO, "amd64-c2", seed="c2", created=OLD, via="http")
    index = images.push_index(scene.registry, REPO, "main", [child], annotations={LABEL: c2})
    images.tag(scene.registry, REPO, index, "sha-" + c2[:7])
    # buildx without annotations: the revision is only the platform image's config label.
    labelled = images.push_image(
        scene.registry, REPO, "arm64-c2", seed="c2 arm", created=OLD, via="http",
        arch="arm64", labels={LABEL: c2},
    )  # fmt: skip
    images.push_index(scene.registry, REPO, "multi", [labelled])
    scene.image(c0, "sha-" + c0[:7], label=False)
    scene.image("f" * 40, "inherited", label=True)  # a FROM image's revision: not ours
    images.tag(scene.registry, REPO, "inherited", f"main-{c0[:8]}")
    policy = git_policy(
        "- references: {tag: /.*/}",
        "- references: {branch: main}",
        "  imagesPerReference: {last: 1}",
    )
    kept = scene.kept(policy=policy)
    assert kept == {"sha-" + c1[:7], "1.2.3", "main", "sha-" + c2[:7], "multi", "arm64-c2"}
    # `<branch>-<sha>` when the user names the pattern: maps `inherited` to c0 (then kept by
    # imagesPerReference.last 2).
    policy2 = policy.replace("{last: 1}", "{last: 3}") + "    commit_tags: ['.+-([0-9a-f]{8})']\n"
    kept = scene.kept(policy=policy2)
    assert {"inherited", f"main-{c0[:8]}", "sha-" + c0[:7]} <= kept
    kept = scene.kept(
        "--commit-tag", ".+-([0-9a-f]{8})", policy=policy.replace("{last: 1}", "{last: 3}")
    )
    assert {"inherited", f"main-{c0[:8]}", "sha-" + c0[:7]} <= kept


def test_commit_tag_needs_keep_git_and_a_group(scene: Scene) -> None:
    for args, message in [
        (("--commit-tag", ".+-([0-9a-f]{7})"), "--commit-tag needs keep.git"),
        (("--keep-git", "--commit-tag", ".+-[0-9a-f]{7}"), "has no group"),
        (("--keep-git", "--commit-tag", "(["), "--commit-tag"),
    ]:
        done = scene.cleanup("--dry-run", *args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr, done.stderr


def test_custom_tags_of_an_unpushed_commit_go_with_their_image(scene: Scene) -> None:
    """werf's e2e "custom tags": tag1 built at a pushed commit stays, tag2 built at a commit
    only the local clone has goes (only origin's history counts)."""
    c0 = scene.origin.linear("main", ("c0", ago(5)))[0]
    scene.clone = scene.origin.clone(scene.tmp / "clone")
    git(scene.clone, "commit", "-q", "--allow-empty", "-m", "local", when=ago(1))
    c1 = git(scene.clone, "rev-parse", "HEAD")
    scene.image(c0, "build-1", "tag1")
    scene.image(c1, "build-2", "tag2")
    assert scene.kept("--keep-git") == {"build-1", "tag1"}
