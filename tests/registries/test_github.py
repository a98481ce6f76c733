"""The `github` backend: the fake REST API (tests/fakes/github_api.py) over the real local
registry standing in for ghcr.io's registry side; results checked with skopeo."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import _github_api as github_api
from ci_env.registries import github
from ci_env.registries.base import Operation, OpKind, first_pattern_match
from tests.fakes.github_api import TOKEN, FakeGitHub
from tests.support.images import (
    EPOCH,
    list_tags,
    push_image,
    push_index,
    seed_bulk,
    skopeo_inspect,
    tag,
)
from tests.support.registry import LocalRegistry

REPO = "acme/app"


@pytest.fixture
def fake(registry: LocalRegistry) -> Iterator[FakeGitHub]:
    api = FakeGitHub(registry=registry, lifetime=240).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github.GithubBackend, "deletes_per_minute", 60_000.0)
    monkeypatch.setattr(github.GithubBackend, "version_wait", (0.2,))


def make(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path, token: str = TOKEN, **extra: object
) -> github.GithubBackend:
    options = BackendOptions(
        docker_config=str(registry.write_docker_config(tmp_path / "docker")),
        api_urls={"github": fake.url},
        native={"github-token": token} if token else {},
        max_attempts=3,
        max_retry_seconds=10,
        **extra,  # type: ignore[arg-type]
    )
    return github.GithubBackend(registry.host, options)


def test_detection_and_options() -> None:
    assert first_pattern_match(github.BACKEND.host_patterns, "ghcr.io")
    assert first_pattern_match(github.BACKEND.host_patterns, "docker.pkg.github.com")
    assert not first_pattern_match(github.BACKEND.host_patterns, "ghcr.io.evil.com")
    (option,) = github.BACKEND.native_options
    assert option.name == "github-token"
    assert option.fallbacks == ("GITHUB_TOKEN",)
    assert option.secret


def test_lists_versions_with_tags_times_and_untagged_children(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    one = push_image(registry, REPO, "1.0", via="http")
    tag(registry, REPO, "1.0", "latest")
    amd = push_image(registry, REPO, "tmp-amd", seed="amd", media="oci", via="http")
    index = push_index(registry, REPO, "multi", [amd])
    fake.version_ids(REPO)  # GHCR knew the child while it was tagged
    backend = make(registry, fake, tmp_path)
    images = {image.digest: image for image in backend.list_images(REPO)}
    assert images[one].tags == ("1.0", "latest")
    assert images[index].tags == ("multi",)
    assert images[one].pushed is not None
    assert images[one].created is not None
    assert amd in images  # a child is a version of its own
    manifest = backend.manifest(REPO, index)  # the registry side
    assert manifest.is_index
    assert manifest.children == (amd,)
    assert fake.calls("GET", "/orgs/acme/packages/container/app/versions") == 1


def test_pages_of_100_and_user_owner_and_encoded_name(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    repo = "octo/team/app"
    seed_bulk(registry, repo, [(f"v{n}", EPOCH) for n in range(130)])
    images = make(registry, fake, tmp_path).list_images(repo)
    assert len(images) == 130
    listed = [(p, q) for m, p, q in fake.log if m == "GET" and p.endswith("/versions")]
    assert [p for p, _ in listed] == ["/users/octo/packages/container/team%2Fapp/versions"] * 2
    assert listed[0][1]["per_page"] == "100"
    assert listed[1][1]["page"] == "2"


def test_delete_removes_the_digest_with_every_tag(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    old = push_image(registry, REPO, "1.0", via="http")
    tag(registry, REPO, "1.0", "1.0-alias")
    kept = push_image(registry, REPO, "2.0", seed="new", via="http")
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    assert backend.delete(REPO, old) == github.DELETE_METHOD
    assert list_tags(registry, REPO) == ["2.0"]
    assert skopeo_inspect(registry, f"{REPO}@{old}") is None
    assert skopeo_inspect(registry, f"{REPO}@{kept}") is not None
    with pytest.raises(NotFoundError):
        backend.delete(REPO, old)


def test_untag_moves_the_tag_to_a_throwaway_and_deletes_only_that(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    digest = push_image(registry, REPO, "1.0", via="http")
    tag(registry, REPO, "1.0", "latest")
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    assert backend.untag(REPO, "1.0", digest) == github.UNTAG_METHOD
    assert list_tags(registry, REPO) == ["latest"]
    assert backend.resolve(REPO, "latest") == digest
    assert skopeo_inspect(registry, f"{REPO}:latest") is not None
    assert list(fake.version_ids(REPO)) == [digest]  # the throwaway version is gone too
    assert fake.calls("DELETE") == 1  # one REST delete, no registry delete attempted
    with pytest.raises(NotFoundError):
        backend.untag(REPO, "1.0", digest)


def test_untag_leaves_a_tag_that_moved(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    old = push_image(registry, REPO, "1.0", via="http")
    new = push_image(registry, REPO, "1.0", seed="re-pushed", via="http")
    backend = make(registry, fake, tmp_path)
    with pytest.raises(RegistryError, match="now points at"):
        backend.untag(REPO, "1.0", old)
    assert backend.resolve(REPO, "1.0") == new
    assert fake.calls("DELETE") == 0


def test_apply_reports_gone_and_carries_on(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    digest = push_image(registry, REPO, "1.0", via="http")
    tag(registry, REPO, "1.0", "keep")
    other = push_image(registry, REPO, "old", seed="old", via="http")
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    ops = [
        Operation(OpKind.UNTAG, digest, "1.0"),
        Operation(OpKind.DELETE, other),
        Operation(OpKind.DELETE, "sha256:" + "0" * 64),
    ]
    results = list(backend.apply(REPO, ops))
    assert [r.ok for r in results] == [True, True, True]
    assert results[2].already_gone
    assert list_tags(registry, REPO) == ["keep"]


def test_bad_token_is_an_auth_error_with_the_scopes(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    push_image(registry, REPO, "1.0", via="http")
    with pytest.raises(AuthError) as caught:
        make(registry, fake, tmp_path, token="ghp_wrong_token_value").list_images(REPO)
    assert type(caught.value) is AuthError
    assert "delete:packages" in caught.value.hint
    assert "ghp_wrong" not in caught.value.render()
    with pytest.raises(AuthError, match="no GitHub token"):
        make(registry, fake, tmp_path, token="").list_images(REPO)


def test_actions_token_without_package_access_stops_the_run(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    digest = push_image(registry, REPO, "1.0", via="http")
    fake.deny = True
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    with pytest.raises(AuthError) as caught:
        list(backend.apply(REPO, [Operation(OpKind.DELETE, digest)]))
    assert "packages: write" in caught.value.hint
    assert "linked" in caught.value.hint
    assert list_tags(registry, REPO) == ["1.0"]


def test_secondary_rate_limit_waits_retry_after_and_records_it(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    digest = push_image(registry, REPO, "1.0", via="http")
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    fake.rate_limit_next("DELETE", "/versions/", seconds=1)
    start = time.monotonic()
    backend.delete(REPO, digest)
    assert time.monotonic() - start >= 1.0
    assert backend.wait_seconds >= 1.0
    assert fake.calls("DELETE") == 2
    assert list_tags(registry, REPO) == []


def test_secondary_429_without_retry_after_waits_the_documented_minute(
    registry: LocalRegistry,
    fake: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GitHub documents 403 or 429 for secondary limits; the old client did not retry a 429
    that carried neither retry-after nor x-ratelimit-remaining: 0."""
    monkeypatch.setattr(github_api, "SECONDARY_WAIT", 0.2)  # the minute, shortened
    digest = push_image(registry, REPO, "1.0", via="http")
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    fake.secondary_429_next("DELETE", "/versions/", times=2)
    backend.delete(REPO, digest)
    assert fake.calls("DELETE") == 3
    assert list_tags(registry, REPO) == []
    assert backend.wait_seconds >= 0.2 + 0.4  # a minute, then twice that


def test_secondary_429_longer_than_the_budget_is_reported_at_once(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    digest = push_image(registry, REPO, "1.0", via="http")
    backend = make(registry, fake, tmp_path)  # max_retry_seconds=10 < the documented minute
    backend.list_images(REPO)
    fake.secondary_429_next("DELETE", "/versions/")
    (result,) = backend.apply(REPO, [Operation(OpKind.DELETE, digest)])
    assert isinstance(result.error, RegistryError)
    assert result.error.code == "RATE_LIMITED"
    assert fake.calls("DELETE") == 1
    assert backend.wait_seconds < 1


def test_rate_limit_reset_header_is_honoured(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    push_image(registry, REPO, "1.0", via="http")
    reset = str(int(time.time()) + 2)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    fake.fail_next("GET", "/versions", (403, headers, {"message": "API rate limit exceeded"}))
    backend = make(registry, fake, tmp_path)
    assert len(backend.list_images(REPO)) == 1
    assert backend.wait_seconds >= 1.0


def test_rate_limit_that_outlasts_the_retries_is_not_an_auth_error(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    digest = push_image(registry, REPO, "1.0", via="http")
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    fake.rate_limit_next("DELETE", "/versions/", seconds=0, times=10)
    (result,) = backend.apply(REPO, [Operation(OpKind.DELETE, digest)])
    assert isinstance(result.error, RegistryError)
    assert not isinstance(result.error, AuthError)
    assert result.error.code == "RATE_LIMITED"
    assert fake.calls("DELETE") == 3
    assert list_tags(registry, REPO) == ["1.0"]


def test_deletes_are_paced(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github.GithubBackend, "deletes_per_minute", 300.0)  # one per 0.2 s
    digests = [push_image(registry, REPO, f"t{n}", seed=f"{n}", via="http") for n in range(4)]
    backend = make(registry, fake, tmp_path)
    backend.list_images(REPO)
    start = time.monotonic()
    results = list(backend.apply(REPO, [Operation(OpKind.DELETE, d) for d in digests]))
    assert all(r.ok for r in results)
    assert time.monotonic() - start >= 0.55
    assert backend.wait_seconds > 0.2


def test_list_repositories_of_an_owner(
    registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path
) -> None:
    for repo in ("acme/app", "acme/team/api", "acme/team/web", "octo/other"):
        push_image(registry, repo, "1", via="http")
    backend = make(registry, fake, tmp_path)
    assert backend.list_repositories("acme") == ["acme/app", "acme/team/api", "acme/team/web"]
    assert backend.list_repositories("acme/team") == ["acme/team/api", "acme/team/web"]


@pytest.mark.slow
def test_cli_detect_and_cleanup(registry: LocalRegistry, fake: FakeGitHub, tmp_path: Path) -> None:
    from tests.commands.clirun import base_env, run_cli

    shared = push_image(registry, REPO, "1.0", via="http")
    tag(registry, REPO, "1.0", "pr-1")
    push_image(registry, REPO, "pr-2", seed="two", via="http")
    amd = push_image(registry, REPO, "tmp", seed="amd", media="oci", via="http")
    index = push_index(registry, REPO, "2.0", [amd])
    fake.version_ids(REPO)
    env = base_env(
        tmp_path,
        DOCKER_CONFIG=str(registry.write_docker_config(tmp_path / "docker")),
        GITHUB_API_URL=fake.url,
        GITHUB_TOKEN=TOKEN,
    )
    repo = f"{registry.host}/{REPO}"
    detect = run_cli("detect", repo, "--repo-container-registry", "github", env=env)
    assert detect.returncode == 0, detect.stderr
    assert "GitHub" in detect.stdout, detect.stderr
    args = (
        *("cleanup", "--repo", repo, "--repo-container-registry", "github"),
        *("--delete-tag", "pr-.*|tmp", "--keep-newer-than", "0s", "--untagged", "delete"),
    )
    dry = run_cli(*args, "--dry-run", env=env, timeout=120)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert list_tags(registry, REPO) == ["1.0", "2.0", "pr-1", "pr-2", "tmp"]
    done = run_cli(*args, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list_tags(registry, REPO) == ["1.0", "2.0"]
    assert skopeo_inspect(registry, f"{REPO}@{shared}") is not None
    assert skopeo_inspect(registry, f"{REPO}@{amd}") is not None  # child of the kept index
    assert skopeo_inspect(registry, f"{REPO}@{index}") is not None
    assert TOKEN not in done.stdout + done.stderr
