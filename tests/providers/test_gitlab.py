"""GitLab CI provider: registry and dependency-proxy logins, variables, log sections."""

from __future__ import annotations

import io
import re

from ci_env.providers.gitlab import GitLabProvider

ENV = {
    "GITLAB_CI": "true",
    "CI_REGISTRY": "registry.gitlab.example",
    "CI_REGISTRY_IMAGE": "registry.gitlab.example/group/app",
    "CI_JOB_TOKEN": "job-token-sentinel",
    "CI_ENVIRONMENT_SLUG": "review-x",
}


def test_detect() -> None:
    assert GitLabProvider.detect(ENV)
    assert not GitLabProvider.detect({})


def test_job_token_login() -> None:
    [source] = GitLabProvider(ENV).login_sources()
    assert (source.registry, source.username, source.variable) == (
        "registry.gitlab.example",
        "gitlab-ci-token",
        "CI_JOB_TOKEN",
    )


def test_registry_user_preferred_and_dependency_proxy() -> None:
    env = {
        **ENV,
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "registry-pass-sentinel",
        "CI_DEPENDENCY_PROXY_SERVER": "gitlab.example:443",
        "CI_DEPENDENCY_PROXY_USER": "gitlab-ci-token",
        "CI_DEPENDENCY_PROXY_PASSWORD": "proxy-pass-sentinel",
    }
    sources = GitLabProvider(env).login_sources()
    assert [(s.registry, s.variable) for s in sources] == [
        ("registry.gitlab.example", "CI_REGISTRY_PASSWORD"),
        ("gitlab.example:443", "CI_DEPENDENCY_PROXY_PASSWORD"),
    ]


def test_no_registry_no_login() -> None:
    assert GitLabProvider({"GITLAB_CI": "true", "CI_JOB_TOKEN": "x" * 8}).login_sources() == []


def test_variables() -> None:
    variables = {v.name: v.value for v in GitLabProvider(ENV).variables("/tmp/job")}
    assert variables == {
        "DOCKER_CONFIG": "/tmp/job",
        "CIENV_DOCKER_CONFIG": "/tmp/job",
        "CIENV_REPO": "registry.gitlab.example/group/app",
        "CIENV_REPO_CONTAINER_REGISTRY": "gitlab",
        "CIENV_ENV": "review-x",
    }


def test_repo_elsewhere_is_not_marked_gitlab() -> None:
    env = {**ENV, "CIENV_REPO": "quay.io/org/app"}
    names = [v.name for v in GitLabProvider(env).variables("/tmp/job")]
    assert "CIENV_REPO_CONTAINER_REGISTRY" not in names


def test_collapsible_sections() -> None:
    out = io.StringIO()
    provider = GitLabProvider(ENV)
    provider.section_start("ci env/login", "Logging in", out)
    provider.section_end("ci env/login", out)
    start, end = out.getvalue().rstrip("\n").split("\n")
    assert re.fullmatch(
        r"\x1b\[0Ksection_start:\d+:ci_env_login\[collapsed=true\]\r\x1b\[0KLogging in", start
    )
    assert re.fullmatch(r"\x1b\[0Ksection_end:\d+:ci_env_login\r\x1b\[0K", end)
