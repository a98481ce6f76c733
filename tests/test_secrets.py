"""secrets: a registered secret is masked in the forms it travels in (issue 16, item 3)."""

from __future__ import annotations

import base64
from urllib.parse import quote

from ci_env import secrets


def test_base64_of_text_holding_the_secret_is_masked_at_any_offset() -> None:
    password = "s3cret-Pa55word!"
    secrets.register(password)
    for prefix in ("", "a", "ab", "user:", "ci:"):
        encoded = base64.b64encode(f"{prefix}{password}".encode()).decode()
        masked = secrets.redact(f"Authorization: Basic {encoded}")
        # at most a few characters at either end survive: never the password's own part
        assert len(masked.replace("Authorization: Basic ", "").replace("***", "")) <= 12
        assert "***" in masked


def test_basic_pair_and_url_quoted_forms_are_masked() -> None:
    secrets.register_basic("robot$ci", "p@ss/word+1")
    pair = base64.b64encode(b"robot$ci:p@ss/word+1").decode()
    assert secrets.redact(f"echo {pair}") == "echo ***"
    assert secrets.redact(f"?password={quote('p@ss/word+1', safe='')}") == "?password=***"
