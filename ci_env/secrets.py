"""Keep secrets out of every output.

Code that learns a secret (a password, a token) calls `register(value)`. The log filter that the
CLI installs, the report writers and the CLI's error printer pass text through `redact()`, so a
secret that slips into a message, an exception or a URL never reaches a terminal or a file.
CI providers also mask registered values in the CI's own log (`::add-mask::`).
"""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_MASK = "***"
# Short values would redact innocent text ("a", "1") and are no real secret.
_MIN_LEN = 4


def register(value: str | None) -> None:
    if value and len(value) >= _MIN_LEN:
        with _lock:
            _secrets.add(value)


def registered() -> list[str]:
    with _lock:
        return sorted(_secrets, key=len, reverse=True)


def redact(text: str) -> str:
    for value in registered():
        if value in text:
            text = text.replace(value, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
