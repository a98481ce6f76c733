"""Any CI (or none): logs in from `CIENV_REGISTRY*` variables, exports the Docker config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ci_env import secrets
from ci_env.errors import UsageError
from ci_env.providers.base import LoginSource, Provider, Variable

DOCKER_SECTION = "DOCKER CONFIG"
REPO_SECTION = "REPO"


def cienv_login_source(env: Mapping[str, str], registry: str | None = None) -> LoginSource | None:
    """`CIENV_REGISTRY` + `CIENV_REGISTRY_USERNAME` + `CIENV_REGISTRY_PASSWORD`, in any CI.

    `registry` (for `ci-env login REGISTRY`) stands in for an unset `CIENV_REGISTRY`.
    Half a configuration is a usage error: the user meant to log in.
    """
    password = env.get("CIENV_REGISTRY_PASSWORD", "")
    secrets.register(password)
    target = env.get("CIENV_REGISTRY") or registry
    username = env.get("CIENV_REGISTRY_USERNAME", "")
    if not (env.get("CIENV_REGISTRY") or username or password):
        return None
    missing = [
        name
        for name, value in (
            ("CIENV_REGISTRY", target),
            ("CIENV_REGISTRY_USERNAME", username),
            ("CIENV_REGISTRY_PASSWORD", password),
        )
        if not value
    ]
    if missing:
        raise UsageError(
            "incomplete registry login variables: " + ", ".join(missing) + " not set",
            "set CIENV_REGISTRY, CIENV_REGISTRY_USERNAME and CIENV_REGISTRY_PASSWORD together",
        )
    assert target is not None
    return LoginSource(target, username, password, "CIENV_REGISTRY_PASSWORD")


def docker_variables(docker_config: str) -> list[Variable]:
    """DOCKER_CONFIG and its CIENV_ twin: always exported, even when already set."""
    return [
        Variable("DOCKER_CONFIG", docker_config, DOCKER_SECTION, always=True),
        Variable("CIENV_DOCKER_CONFIG", docker_config, DOCKER_SECTION, always=True),
    ]


class GenericProvider(Provider):
    name: ClassVar[str] = "generic"
    login_variables: ClassVar[str] = (
        "CIENV_REGISTRY, CIENV_REGISTRY_USERNAME, CIENV_REGISTRY_PASSWORD"
    )

    @classmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        return True

    def login_sources(self) -> list[LoginSource]:
        source = cienv_login_source(self.env)
        return [source] if source else []

    def variables(self, docker_config: str) -> list[Variable]:
        return docker_variables(docker_config)


PROVIDER = GenericProvider
