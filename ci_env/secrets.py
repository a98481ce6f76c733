"""Keep secrets out of every output.

Code that learns a secret (a password, a token) calls `register(value)`. The log filter that the
CLI installs, the report writers and the CLI's error printer pass text through `redact()`, so a
secret that slips into a message, an exception or a URL never reaches a terminal or a file.
CI providers also mask registered values in the CI's own log (`::add-mask::`).
"""

from __future__ import annotations

import base64
import logging
import threading
from urllib.parse import quote

_lock = threading.Lock()
_secrets: set[str] = set()
_MASK = "***"
# Short values would redact innocent text ("a", "1") and are no real secret.
_MIN_LEN = 4


# Shorter encoded cores would mask innocent base64 text by chance.
_MIN_ENCODED = 8


def _encoded(value: str) -> set[str]:
    """Forms a secret takes in text it travels in: base64 (an `Authorization: Basic` header a
    registry echoes, a Docker config `auth`) and URL-quoting (a query string).

    Base64 of a longer text holding the secret depends on where the secret starts modulo 3,
    so for each start the encoding of the secret's whole 3-byte groups is masked: what is
    left visible is at most two bytes' worth at either end.
    """
    raw = value.encode()
    forms = set()
    for skip in range(3):
        body = raw[skip:]
        body = body[: len(body) // 3 * 3]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(body).decode("ascii")
            if len(text) >= _MIN_ENCODED:
                forms.add(text)
    quoted = quote(value, safe="")
    if quoted != value:
        forms.add(quoted)
    return forms


def register(value: str | None) -> None:
    """Mask `value` (and its base64 and URL-quoted forms) in every output from now on."""
    if value and len(value) >= _MIN_LEN:
        forms = {value, *_encoded(value)}
        with _lock:
            _secrets.update(forms)


def register_basic(username: str, password: str) -> None:
    """Mask a password and the `user:password` pair as an `Authorization: Basic` header has it."""
    register(password)
    if password:
        register(base64.b64encode(f"{username}:{password}".encode()).decode("ascii"))


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
