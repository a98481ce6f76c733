"""GitHub Actions provider: ghcr.io login variables, CIENV_REPO, workflow commands."""

from __future__ import annotations

import io
from pathlib import Path

from ci_env.providers.github import GitHubProvider

ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTOR": "Octo-Cat",
    "GITHUB_TOKEN": "ghs_sentinel000",
    "GITHUB_REPOSITORY": "Octo-Org/My-App",
}


def test_detect() -> None:
    assert GitHubProvider.detect(ENV)
    assert not GitHubProvider.detect({"GITHUB_ACTIONS": "false"})


def test_login_from_github_token() -> None:
    [source] = GitHubProvider(ENV).login_sources()
    assert (source.registry, source.username, source.password) == (
        "ghcr.io",
        "Octo-Cat",
        "ghs_sentinel000",
    )
    assert source.variable == "GITHUB_TOKEN"
    assert GitHubProvider({"GITHUB_ACTIONS": "true"}).login_sources() == []


def test_legacy_registry_when_repo_points_there() -> None:
    env = {**ENV, "WERF_REPO": "docker.pkg.github.com/octo-org/my-app/app"}
    [source] = GitHubProvider(env).login_sources()
    assert source.registry == "docker.pkg.github.com"


def test_cienv_registry_is_added() -> None:
    env = {
        **ENV,
        "CIENV_REGISTRY": "registry.example",
        "CIENV_REGISTRY_USERNAME": "bot",
        "CIENV_REGISTRY_PASSWORD": "pw-sentinel",
    }
    assert [s.registry for s in GitHubProvider(env).login_sources()] == [
        "ghcr.io",
        "registry.example",
    ]


def test_variables_lowercase_the_repository() -> None:
    variables = {v.name: v for v in GitHubProvider(ENV).variables("/tmp/job")}
    assert variables["CIENV_REPO"].value == "ghcr.io/octo-org/my-app"
    assert variables["DOCKER_CONFIG"].always
    assert variables["CIENV_DOCKER_CONFIG"].always
    assert not variables["CIENV_REPO"].always


def test_workflow_commands() -> None:
    out = io.StringIO()
    provider = GitHubProvider(ENV)
    provider.mask("line-one\nline-two", out)
    provider.error("bad 100%\nthing", out)
    provider.section_start("x", "Title", out)
    provider.section_end("x", out)
    assert out.getvalue().splitlines() == [
        "::add-mask::line-one",
        "::add-mask::line-two",
        "::error::bad 100%25%0Athing",
        "::group::Title",
        "::endgroup::",
    ]


def test_summary_appends_to_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    GitHubProvider({**ENV, "GITHUB_STEP_SUMMARY": str(summary)}).summary("## ci-env")
    assert summary.read_text() == "before\n## ci-env\n"
    GitHubProvider(ENV).summary("ignored without the variable")
