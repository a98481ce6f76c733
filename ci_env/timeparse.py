"""Times as registries and their APIs write them, parsed in one place.

RFC 3339 / ISO 8601 with `Z` or an offset (nanosecond fractions, as Go writes them, are cut to
microseconds), RFC 2822 dates, and unix seconds. Unusable values are None, never an error: a
time is a hint for the policy, and a tag without one is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Go writes up to 9 fractional digits; Python reads at most 6.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: object) -> datetime | None:
    """An aware datetime (UTC when the text has no offset), or None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = _FRACTION.sub(r"\1", str(value).strip()).replace("z", "Z").replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
