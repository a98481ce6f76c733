"""Modules imported on first use.

The CLI builds its parser from every backend's declared options, so every backend module is
imported on each run; the SDKs behind them (PyGithub, python-gitlab, boto3, the docker SDK) take
about a second to import together. Deferring them keeps `ci-env --help` and `ci-env env` fast.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

_lock = threading.Lock()


def module(name: str) -> ModuleType:
    """`name` as a module object whose import runs on first attribute access."""
    with _lock:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        lazy = importlib.util.module_from_spec(spec)
        sys.modules[name] = lazy
        loader.exec_module(lazy)
        return lazy
