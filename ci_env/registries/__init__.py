"""Registered registry kinds.

Registering a new registry is one line here (kind -> module) plus its module, which exposes
`BACKEND`. Order matters: detection by host tries kinds top to bottom; `default` is last.
Modules are imported lazily so that a run only loads the SDKs it needs.
"""

from __future__ import annotations

import importlib

from ci_env.errors import UsageError
from ci_env.registries.base import Backend

KINDS: dict[str, str] = {
    "ecr": "ci_env.registries.ecr",
    "ecr-public": "ci_env.registries.ecr_public",
    "acr": "ci_env.registries.acr",
    "dockerhub": "ci_env.registries.dockerhub",
    "gcr": "ci_env.registries.gcr",
    "gar": "ci_env.registries.gar",
    "github": "ci_env.registries.github",
    "gitlab": "ci_env.registries.gitlab",
    "harbor": "ci_env.registries.harbor",
    "quay": "ci_env.registries.quay",
    "artifactory": "ci_env.registries.artifactory",
    "nexus": "ci_env.registries.nexus",
    "yandex": "ci_env.registries.yandex",
    "selectel": "ci_env.registries.selectel",
    "default": "ci_env.registries.default",
}


def backend_class(kind: str) -> type[Backend]:
    """The backend class of `kind`; an unknown kind is a usage error listing the valid ones."""
    module_name = KINDS.get(kind)
    if module_name is None:
        raise UsageError(
            f"unknown container registry kind {kind!r}",
            "use one of: " + ", ".join(sorted(KINDS)) + " (or auto)",
        )
    backend: type[Backend] = importlib.import_module(module_name).BACKEND
    return backend


def available() -> list[type[Backend]]:
    """Every registered backend class, in detection order."""
    return [backend_class(kind) for kind in KINDS]
