"""Reading settings from the environment, in one place.

Only the CLI, this module and the CI providers read `os.environ`; everything else receives
values. Precedence everywhere: command-line option, then `CIENV_<NAME>`, then werf's
`WERF_<NAME>` (so werf users switch without renaming), then any extra fallbacks named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def environ() -> Mapping[str, str]:
    return os.environ


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


def flag(value: str | None) -> bool:
    """A boolean variable as CI systems write them (1/true/yes/on)."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on", "y"}
