"""The `gitlab` backend: python-gitlab against the fake GitLab API (tests/fakes/gitlab_api.py),
the registry side against the real local registry whose Bearer realm is the fake's /jwt/auth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_env.errors import AuthError, NotFoundError, RegistryError, UsageError
from ci_env.options import BackendOptions
from ci_env.registries import gitlab
from ci_env.registries.base import Operation, OpKind, first_pattern_match
from tests.fakes.gitlab_api import ACCESS_TOKEN, JOB_TOKEN, FakeGitLab, GitLabRegistry
from tests.support.images import EPOCH, list_tags, push_image, push_index, seed_bulk, tag

REPO = "grp/proj"


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    api = FakeGitLab(lifetime=240).start()
    registry = GitLabRegistry(api.realm).start()
    api.registry = registry
    try:
        yield api
    finally:
        api.stop()
        registry.close()


def make(fake: FakeGitLab, tmp_path: Path, **native: str) -> gitlab.GitlabBackend:
    assert fake.registry is not None
    docker = fake.registry.write_docker_config(tmp_path / "docker", "gitlab-ci-token", JOB_TOKEN)
    options = BackendOptions(
        docker_config=str(docker),
        api_urls={"gitlab": fake.api_url},
        native=native or {"gitlab-token": ACCESS_TOKEN},
        max_attempts=2,
    )
    return gitlab.GitlabBackend(fake.registry.host, options)


def test_detection_options_and_api_url() -> None:
    assert first_pattern_match(gitlab.BACKEND.host_patterns, "registry.gitlab.com")
    names = {o.name: o for o in gitlab.BACKEND.native_options}
    assert names["gitlab-job-token"].fallbacks == ("CI_JOB_TOKEN",)
    assert names["gitlab-project"].fallbacks == ("CI_PROJECT_ID",)
    assert names["gitlab-token"].secret
    assert not names["gitlab-project"].secret
    assert gitlab.api_base("registry.gitlab.com", BackendOptions()) == "https://gitlab.com"
    assert gitlab.api_base("registry.example.com:5050", BackendOptions()) == ("https://example.com")
    custom = BackendOptions(api_urls={"gitlab": "https://git.corp/api/v4"})
    assert gitlab.api_base("cr.corp", custom) == "https://git.corp"
    with pytest.raises(UsageError, match="GitLab API URL"):
        gitlab.api_base("cr.corp", BackendOptions())
    assert gitlab.candidates("a/b/c/d", "") == ["a/b/c/d", "a/b/c", "a/b"]
    assert gitlab.candidates("a/b/c", "7") == ["7", "a/b/c", "a/b"]


def test_lists_tags_grouped_by_digest_with_times(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    one = push_image(fake.registry, REPO, "1.0", created=when, via="http")
    tag(fake.registry, REPO, "1.0", "latest")
    sub = push_image(fake.registry, f"{REPO}/sub/img", "x", seed="sub", via="http")
    backend = make(fake, tmp_path)
    (image,) = backend.list_images(REPO)
    assert (image.digest, image.tags, image.created) == (one, ("1.0", "latest"), when)
    (nested,) = backend.list_images(f"{REPO}/sub/img")
    assert nested.digest == sub
    assert backend.list_images("grp/proj/none") == []


def test_tags_are_paged_by_keyset(fake: FakeGitLab, tmp_path: Path) -> None:
    """GitLab: offset pagination of tags is deprecated, keyset preferred (the old client
    paged by offset)."""
    assert fake.registry is not None
    seed_bulk(fake.registry, REPO, [(f"t{n:03}", EPOCH) for n in range(150)])
    images = make(fake, tmp_path).list_images(REPO)
    assert len(images) == 150
    pages = [q for m, p, q in fake.log if m == "GET" and p.endswith("/tags")]
    assert [q.get("pagination") for q in pages] == ["keyset", "keyset"]
    assert [q.get("last") for q in pages] == [None, "t099"]


def test_offset_pages_where_keyset_is_not_available(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    fake.keyset = False  # self-managed GitLab without the registry metadata database
    seed_bulk(fake.registry, REPO, [(f"t{n:03}", EPOCH) for n in range(150)])
    images = make(fake, tmp_path).list_images(REPO)
    assert len(images) == 150
    pages = [q for m, p, q in fake.log if m == "GET" and p.endswith("/tags")]
    assert [q.get("pagination") for q in pages] == ["keyset", None, None]
    assert [q.get("page", "1") for q in pages[1:]] == ["1", "2"]


def test_project_from_ci_project_id(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    push_image(fake.registry, REPO, "1.0", via="http")
    backend = make(fake, tmp_path, **{"gitlab-token": ACCESS_TOKEN, "gitlab-project": "7"})
    assert len(backend.list_images(REPO)) == 1
    listed = [p for m, p, _ in fake.log if p.endswith("/registry/repositories")]
    assert listed == ["/api/v4/projects/7/registry/repositories"]


def test_untag_is_a_pure_untag(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    digest = push_image(fake.registry, REPO, "1.0", via="http")
    tag(fake.registry, REPO, "1.0", "latest")
    backend = make(fake, tmp_path)
    backend.list_images(REPO)
    assert backend.untag(REPO, "1.0", digest) == gitlab.UNTAG_METHOD
    assert list_tags(fake.registry, REPO) == ["latest"]
    assert backend.resolve(REPO, "latest") == digest
    assert backend.manifest(REPO, digest).digest == digest  # registry side, via /jwt/auth
    assert fake.calls("GET", "/jwt/auth") >= 1
    with pytest.raises(NotFoundError):
        backend.untag(REPO, "1.0", digest)


def test_untag_leaves_a_moved_tag(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    old = push_image(fake.registry, REPO, "1.0", via="http")
    push_image(fake.registry, REPO, "1.0", seed="again", via="http")
    with pytest.raises(RegistryError, match="now points at"):
        make(fake, tmp_path).untag(REPO, "1.0", old)
    assert list_tags(fake.registry, REPO) == ["1.0"]


def test_delete_removes_every_tag_of_the_digest_only(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    old = push_image(fake.registry, REPO, "1.0", via="http")
    tag(fake.registry, REPO, "1.0", "1.0-alias")
    push_image(fake.registry, REPO, "2.0", seed="new", via="http")
    backend = make(fake, tmp_path)
    backend.list_images(REPO)
    assert backend.delete(REPO, old) == gitlab.DELETE_METHOD
    assert list_tags(fake.registry, REPO) == ["2.0"]
    with pytest.raises(NotFoundError):
        backend.delete(REPO, old)


def test_protected_tag_fails_alone_and_the_run_goes_on(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    keep = push_image(fake.registry, REPO, "v1", via="http")
    tag(fake.registry, REPO, "v1", "release")
    other = push_image(fake.registry, REPO, "old", seed="old", via="http")
    fake.protected = {"v1"}
    backend = make(fake, tmp_path)
    backend.list_images(REPO)
    results = list(
        backend.apply(REPO, [Operation(OpKind.UNTAG, keep, "v1"), Operation(OpKind.DELETE, other)])
    )
    assert isinstance(results[0].error, RegistryError)
    assert results[0].error.code == "PROTECTED"
    assert "protection rule" in results[0].error.hint
    assert results[1].ok
    assert list_tags(fake.registry, REPO) == ["release", "v1"]


def test_bad_token_is_an_auth_error(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    push_image(fake.registry, REPO, "1.0", via="http")
    with pytest.raises(AuthError) as caught:
        make(fake, tmp_path, **{"gitlab-token": "glpat-wrong"}).list_images(REPO)
    assert type(caught.value) is AuthError
    assert "api" in caught.value.hint
    with pytest.raises(AuthError, match="no GitLab token"):
        make(fake, tmp_path, **{"gitlab-project": "7"}).list_images(REPO)


def test_job_token_lists_and_explains_a_refused_delete(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    digest = push_image(fake.registry, REPO, "1.0", via="http")
    tag(fake.registry, REPO, "1.0", "latest")
    fake.job_token_can_delete = False
    backend = make(fake, tmp_path, **{"gitlab-job-token": JOB_TOKEN})
    assert backend.job
    assert len(backend.list_images(REPO)) == 1
    with pytest.raises(AuthError) as caught:
        list(backend.apply(REPO, [Operation(OpKind.UNTAG, digest, "1.0")]))
    assert "CI_JOB_TOKEN" in caught.value.hint
    assert "CIENV_REPO_GITLAB_TOKEN" in caught.value.hint
    assert list_tags(fake.registry, REPO) == ["1.0", "latest"]


def test_index_children_are_read_through_the_registry(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    amd = push_image(fake.registry, REPO, "amd", seed="amd", media="oci", via="http")
    index = push_index(fake.registry, REPO, "multi", [amd])
    backend = make(fake, tmp_path)
    manifest = backend.manifest(REPO, index)
    assert manifest.is_index
    assert manifest.children == (amd,)


def test_list_repositories(fake: FakeGitLab, tmp_path: Path) -> None:
    assert fake.registry is not None
    for repo in (REPO, f"{REPO}/a", f"{REPO}/b/c"):
        push_image(fake.registry, repo, "1", via="http")
    backend = make(fake, tmp_path)
    assert backend.list_repositories(REPO) == [f"{REPO}/a", f"{REPO}/b/c"]


@pytest.mark.slow
def test_cli_inside_a_gitlab_job(fake: FakeGitLab, tmp_path: Path) -> None:
    from tests.commands.clirun import base_env, run_cli

    assert fake.registry is not None
    shared = push_image(fake.registry, REPO, "1.0", via="http")
    tag(fake.registry, REPO, "1.0", "mr-1")
    push_image(fake.registry, REPO, "mr-2", seed="two", via="http")
    docker = fake.registry.write_docker_config(tmp_path / "docker", "gitlab-ci-token", JOB_TOKEN)
    env = base_env(
        tmp_path,
        GITLAB_CI="true",
        CI_JOB_TOKEN=JOB_TOKEN,
        CI_SERVER_URL=fake.url,
        CI_API_V4_URL=fake.api_url,
        CI_PROJECT_ID="7",
        CI_PROJECT_PATH=REPO,
        CI_REGISTRY=fake.registry.host,
        CI_REGISTRY_IMAGE=f"{fake.registry.host}/{REPO}",
        CIENV_REPO=f"{fake.registry.host}/{REPO}",
        DOCKER_CONFIG=str(docker),
    )
    detect = run_cli("detect", f"{fake.registry.host}/{REPO}", "--repo-container-registry",
                     "gitlab", env=env)  # fmt: skip
    assert detect.returncode == 0, detect.stderr
    assert "GitLab" in detect.stdout, detect.stderr
    args = ("cleanup", "--repo-container-registry", "gitlab", "--delete-tag", "mr-.*",
            "--keep-newer-than", "0s")  # fmt: skip
    dry = run_cli(*args, "--dry-run", env=env, timeout=120)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert list_tags(fake.registry, REPO) == ["1.0", "mr-1", "mr-2"]
    done = run_cli(*args, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list_tags(fake.registry, REPO) == ["1.0"]
    assert images_of(fake, tmp_path) == {shared: ("1.0",)}
    assert JOB_TOKEN not in done.stdout + done.stderr

    fake.job_token_can_delete = False
    push_image(fake.registry, REPO, "mr-3", seed="three", via="http")
    refused = run_cli(*args, env=env, timeout=120)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "CI_JOB_TOKEN" in refused.stderr


def images_of(fake: FakeGitLab, tmp_path: Path) -> dict[str, tuple[str, ...]]:
    return {i.digest: i.tags for i in make(fake, tmp_path).list_images(REPO)}
