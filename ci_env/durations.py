"""Durations as CI users write them: `30s`, `90m`, `36h`, `14d`, `2w`, `0s`.

One number and one unit, no spaces or combinations, so a policy file reads the same in every
CI system and a typo (`30 days`, `1h30m`, `-2h`) is a usage error instead of a silent default.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ci_env.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"([0-9]+)([smhdw])")
# Longer than any retention anyone means; `now - duration` must still be a valid datetime.
MAX_DAYS = 36_500


def parse(text: str, *, what: str = "duration") -> timedelta:
    """`"14d"` -> 14 days. Anything else is a UsageError naming `what` (the option or key)."""
    match = _PATTERN.fullmatch(str(text).strip().lower())
    if match is None:
        raise UsageError(
            f"{what}: {text!r} is not a duration",
            "write a whole number and one unit: s, m, h, d or w (e.g. 30s, 90m, 36h, 14d, 2w, 0s)",
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DAYS * 86400:
        raise UsageError(
            f"{what}: {text!r} is longer than {MAX_DAYS} days",
            f"write at most {MAX_DAYS}d (about 100 years)",
        )
    return timedelta(seconds=seconds)


def render(value: timedelta) -> str:
    """The shortest exact spelling: 14 days -> `2w`, 36 hours -> `36h`, 0 -> `0s`."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
