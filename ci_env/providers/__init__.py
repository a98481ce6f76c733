"""Registered CI providers, in detection order (generic last: it matches everywhere)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ci_env.errors import UsageError
from ci_env.providers.base import Provider

PROVIDERS: dict[str, str] = {
    "github": "ci_env.providers.github",
    "gitlab": "ci_env.providers.gitlab",
    "generic": "ci_env.providers.generic",
}
CHOICES = ("auto", *PROVIDERS)


def provider_class(name: str) -> type[Provider]:
    module_name = PROVIDERS.get(name)
    if module_name is None:
        raise UsageError(f"unknown CI provider {name!r}", "use one of: " + ", ".join(CHOICES))
    provider: type[Provider] = importlib.import_module(module_name).PROVIDER
    return provider


def select(name: str, env: Mapping[str, str]) -> Provider:
    """The provider called `name`, or for `auto` the first whose `detect` matches."""
    if name != "auto":
        return provider_class(name)(env)
    for candidate in PROVIDERS:
        cls = provider_class(candidate)
        if cls.detect(env):
            return cls(env)
    raise AssertionError("the generic provider always matches")
