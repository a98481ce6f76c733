"""Printing text that came from a registry where a CI runner reads workflow commands.

GitHub's runner runs every output line (stdout or stderr) that starts with `::`, after leading
whitespace, as a workflow command: a tag or an error message holding a newline and
`::add-mask::...` or `::set-output ...` would reach it as one. Lines end at `\\n` and at a lone
`\\r` (the runner reads with .NET's `ReadLine`). Under GitHub Actions, `guard` wraps such text
in GitHub's `::stop-commands::<token>` ... `::<token>::` pair with a fresh random token (the
documented way to print untrusted output); elsewhere, and for text with no such line, it
returns the text unchanged. The CLI calls `configure` once per run.
"""

from __future__ import annotations

import re
import secrets as random_tokens
import threading

_COMMAND_LINE = re.compile(r"(?:\A|[\r\n])\s*::")
_state = {"github": False}
_lock = threading.Lock()


def configure(*, github_actions: bool) -> None:
    with _lock:
        _state["github"] = github_actions


def guard(text: str) -> str:
    """`text`, made inert for the runner when some line of it would be a workflow command."""
    with _lock:
        github = _state["github"]
    if not github or not _COMMAND_LINE.search(text):
        return text
    token = random_tokens.token_hex(16)
    return f"::stop-commands::{token}\n{text}\n::{token}::"
