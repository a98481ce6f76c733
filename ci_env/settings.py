"""Reading settings from the environment, in one place.

Only the CLI, this module and the CI providers read `os.environ`; everything else receives
values. Precedence everywhere: command-line option, then `CIENV_<NAME>`, then werf's
`WERF_<NAME>` (so werf users switch without renaming), then any extra fallbacks named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from ci_env.errors import UsageError

_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"", "0", "false", "no", "off", "n"})


def environ() -> Mapping[str, str]:
    return os.environ


def snapshot(env: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only copy of `env` as it is now, for an object that reads it later."""
    return MappingProxyType(dict(env))


def env_first(*names: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of the first of `names` that is set and non-empty."""
    source = os.environ if env is None else env
    for name in names:
        value = source.get(name)
        if value:
            return value
    return None


def cienv(name: str, *extra: str, env: Mapping[str, str] | None = None) -> str | None:
    """`CIENV_<name>`, then `WERF_<name>`, then each of `extra`."""
    return env_first(f"CIENV_{name}", f"WERF_{name}", *extra, env=env)


def flag(value: str | None, name: str) -> bool:
    """A boolean variable as CI systems write them (1/true/yes/on/y, 0/false/no/off/n, empty).

    Anything else is a UsageError naming `name`: `CIENV_DRY_RUN=maybe` must not mean "no"
    and run a real cleanup."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(
        f"{name}={value!r} is not a boolean",
        f"set {name} to true or false (also accepted: 1/0, yes/no, on/off, y/n)",
    )


def cienv_flag(name: str, *extra: str, env: Mapping[str, str] | None = None) -> bool:
    """A boolean `CIENV_<name>` (then `WERF_<name>`, then `extra`), naming the one that was set."""
    for full in (f"CIENV_{name}", f"WERF_{name}", *extra):
        value = env_first(full, env=env)
        if value:
            return flag(value, full)
    return False
