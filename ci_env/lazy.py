"""Modules imported on first use, and the pip extra that provides each optional SDK.

The CLI builds its parser from every backend's declared options, so every backend module is
imported on each run; the SDKs behind them (PyGithub, python-gitlab, boto3, the docker SDK) take
about a second to import together. Deferring them keeps `ci-env --help` and `ci-env env` fast,
and lets `pip install ci-env` (the base, no SDK) run every command that needs none: a backend
whose SDK is missing fails on first use with a `MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
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

_lock = threading.Lock()


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


class _ExtraLoader(Loader):
    """Runs the real loader, turning a missing optional SDK into `MissingExtraError`."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        except ModuleNotFoundError as error:
            extra = missing_extra(error)
            if extra is None:
                raise
            sys.modules.pop(module.__name__, None)  # a later `lazy.module()` tries again
            module.__dict__.update(_missing=extra.module, _extra=extra.extra)
            module.__class__ = _Absent  # later uses of this object say it again
            raise extra from None


class _Absent(ModuleType):
    """Stands for an SDK that is not installed; any use says which extra provides it."""

    def __init__(self, name: str, extra: str) -> None:
        super().__init__(name)
        self._missing = name.partition(".")[0]
        self._extra = extra

    def __getattr__(self, attribute: str) -> object:
        raise MissingExtraError(self._missing, self._extra)


def module(name: str) -> ModuleType:
    """`name` as a module object whose import runs on first attribute access."""
    with _lock:
        if name in sys.modules:
            return sys.modules[name]
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError as error:  # a parent package is missing
            extra = missing_extra(error)
            if extra is None:
                raise
            spec = None
        if spec is None or spec.loader is None:
            extra_name = EXTRAS.get(name.partition(".")[0])
            if extra_name is None:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return _Absent(name, extra_name)  # not cached: installing it later just works
        loader = importlib.util.LazyLoader(_ExtraLoader(spec.loader))
        spec.loader = loader
        lazy = importlib.util.module_from_spec(spec)
        sys.modules[name] = lazy
        loader.exec_module(lazy)
        return lazy
