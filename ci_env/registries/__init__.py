"""Registered registry kinds.

Registering a new registry is one line here (kind -> module) plus its module, which exposes
`BACKEND`. Order matters: detection by host tries kinds top to bottom; `default` is last.
Backend modules import their SDKs lazily (`ci_env.lazy`), so a base install imports every one;
a listed module that fails to import is an error naming the kind, never a silent fallback.
"""

from __future__ import annotations

import importlib

from ci_env import lazy
from ci_env.errors import CiEnvError, UsageError
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
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        # An optional SDK imported by the module is the extra's error; anything else means
        # KINDS names a module that is not there (a typo), which must not pass for `default`.
        extra = lazy.missing_extra(error) if isinstance(error, ModuleNotFoundError) else None
        raise extra or KindModuleError(kind, module_name, error) from error
    backend: type[Backend] = module.BACKEND
    return backend


class KindModuleError(CiEnvError):
    """A registered kind whose module cannot be imported: a broken install or a bad KINDS."""

    def __init__(self, kind: str, module_name: str, error: ImportError) -> None:
        super().__init__(
            f"registry kind {kind!r} is registered as module {module_name!r}, "
            f"which cannot be imported: {error}",
            "reinstall ci-env (in a source tree: fix KINDS in ci_env/registries/__init__.py)",
        )
        self.kind = kind
        self.module_name = module_name


def available() -> list[type[Backend]]:
    """Every registered backend class, in detection order."""
    return [backend_class(kind) for kind in KINDS]
