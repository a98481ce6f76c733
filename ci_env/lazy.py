"""Modules imported on first use, and the pip extra that provides each optional SDK.

The CLI builds its parser from every backend's declared options, so every backend module is
imported on each run; the SDKs behind them (PyGithub, python-gitlab, boto3, the docker SDK) take
about a second to import together. Deferring them keeps `ci-env --help` and `ci-env env` fast,
and lets `pip install ci-env` (the base, no SDK) run every command that needs none: a backend
whose SDK is missing fails on first use with a `MissingExtraError` naming the extra to install.

The stand-in does a plain import on first attribute access instead of using
`importlib.util.LazyLoader`: that one (Python 3.11) lets a second thread see the module half
executed (`module 'docker' has no attribute 'errors'`) while a first one runs it, and cleanup
plans repositories in parallel. The import system's per-module lock makes the plain import safe.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ci_env.errors import UsageError

# Top-level module of an optional SDK -> the extra of pyproject.toml that installs it.
EXTRAS: dict[str, str] = {
    "boto3": "aws",
    "botocore": "aws",
    "github": "github",
    "gitlab": "gitlab",
    "kubernetes": "kubernetes",
}


class MissingExtraError(UsageError):
    """An optional SDK is not installed: exit 2 before anything is deleted."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this needs the Python package {module!r}, which is not installed",
            f"pip install 'ci-env[{extra}]' (or 'ci-env[all]'; the ci-env image has every extra)",
        )
        self.module = module
        self.extra = extra


def missing_extra(error: ModuleNotFoundError) -> MissingExtraError | None:
    """The `MissingExtraError` for an import that failed on an optional SDK, else None."""
    top = (error.name or "").partition(".")[0]
    extra = EXTRAS.get(top)
    return MissingExtraError(top, extra) if extra else None


class _Deferred(ModuleType):
    """Stands for module `__name__`; the first attribute read imports it."""

    def __getattr__(self, attribute: str) -> object:
        real = self.__dict__.get("_real")
        if real is None:
            try:
                real = importlib.import_module(self.__name__)
            except ModuleNotFoundError as error:
                extra = missing_extra(error)
                if extra is None:
                    raise
                raise extra from None  # not cached: installing it later just works
            self.__dict__["_real"] = real
        return getattr(real, attribute)


def module(name: str) -> ModuleType:
    """`name` as a module object whose import runs on first attribute access."""
    if name.partition(".")[0] not in EXTRAS and importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return _Deferred(name)
