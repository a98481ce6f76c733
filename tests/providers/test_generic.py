"""Generic provider and provider selection."""

from __future__ import annotations

import pytest

from ci_env import providers
from ci_env.errors import UsageError
from ci_env.providers.generic import GenericProvider, cienv_login_source


def test_auto_selection() -> None:
    assert providers.select("auto", {"GITHUB_ACTIONS": "true"}).name == "github"
    assert providers.select("auto", {"GITLAB_CI": "true"}).name == "gitlab"
    assert providers.select("auto", {}).name == "generic"
    assert providers.select("gitlab", {}).name == "gitlab"
    with pytest.raises(UsageError):
        providers.select("jenkins", {})


def test_cienv_login_variables() -> None:
    env = {
        "CIENV_REGISTRY": "r.example",
        "CIENV_REGISTRY_USERNAME": "u",
        "CIENV_REGISTRY_PASSWORD": "pw-sentinel",
    }
    [source] = GenericProvider(env).login_sources()
    assert (source.registry, source.username, source.variable) == (
        "r.example",
        "u",
        "CIENV_REGISTRY_PASSWORD",
    )
    assert GenericProvider({}).login_sources() == []


def test_half_configured_login_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="CIENV_REGISTRY_PASSWORD"):
        GenericProvider(
            {"CIENV_REGISTRY": "r.example", "CIENV_REGISTRY_USERNAME": "u"}
        ).login_sources()


def test_login_registry_argument_stands_in_for_cienv_registry() -> None:
    env = {"CIENV_REGISTRY_USERNAME": "u", "CIENV_REGISTRY_PASSWORD": "pw-sentinel"}
    source = cienv_login_source(env, "r.example")
    assert source is not None
    assert source.registry == "r.example"


def test_only_docker_variables() -> None:
    names = [v.name for v in GenericProvider({}).variables("/tmp/j")]
    assert names == ["DOCKER_CONFIG", "CIENV_DOCKER_CONFIG"]
