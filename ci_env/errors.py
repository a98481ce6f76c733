"""The one root error of ci-env and its few kinds.

Every failure a user can act on is a `CiEnvError` carrying *what* went wrong and *what to do*.
The CLI has exactly one `except CiEnvError` that prints `error: <what> — <what to do>` and exits
with `exit_code`. Backends translate transport errors into these inside the backend.
"""

from __future__ import annotations


class CiEnvError(Exception):
    """Root error. `hint` says what to do; `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return f"error: {self.message}" + (f" — {self.hint}" if self.hint else "")


class UsageError(CiEnvError):
    """Bad input or configuration (a flag, a variable, a policy file, a reference): exit 2."""

    exit_code = 2


class AuthError(CiEnvError):
    """Authentication or permission refused by a registry or API: exit 3. Never retried."""

    exit_code = 3


class RegistryError(CiEnvError):
    """A registry or API failed in a way retries did not fix: exit 1.

    `status` is the HTTP status (0 for a connection failure); `code` the registry error code
    (e.g. MANIFEST_UNKNOWN) when the body carried one.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str = "", status: int = 0, code: str = "") -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code


class NotFoundError(RegistryError):
    """The repository, tag or manifest does not exist (404). Deleting it counts as done."""


class UnsupportedError(RegistryError):
    """The registry refuses an operation outright (405, UNSUPPORTED): try the next method."""
