"""Translate registry HTTP responses into `ci_env.errors` types, keeping status and code.

The Docker Registry API error body is `{"errors": [{"code": "...", "message": "..."}]}`
(distribution-spec "Error Codes"); other APIs put a message elsewhere, so we fall back to text.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from ci_env import secrets
from ci_env.errors import AuthError, NotFoundError, RegistryError, UnsupportedError

_UNSUPPORTED_CODES = frozenset({"UNSUPPORTED"})


def loads(data: bytes | str) -> Any:
    """JSON from a registry; ValueError for anything that is not (also for JSON nested so deep
    that the parser runs out of stack, which Python reports as RecursionError)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object of a token or login answer; RegistryError for anything else."""
    try:
        body = loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RegistryError(f"{what}: the answer is not a JSON object", status=response.status_code)
    return body


def error_code(response: requests.Response) -> tuple[str, str]:
    """(code, message) of the first registry error in the body, ('', '') when none."""
    try:
        body: Any = loads(response.content)
    except ValueError:
        return "", response.text[:200].strip()
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("code") or ""), str(first.get("message") or "")
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return "", str(body[key])
    return "", ""


def to_error(response: requests.Response, what: str, registry: str) -> RegistryError | AuthError:
    """The error for a failed `response` to `what` (e.g. "DELETE manifest sha256:.. of app")."""
    status = response.status_code
    code, message = error_code(response)
    detail = secrets.redact(
        f"{status}{' ' + code if code else ''}{': ' + message if message else ''}"
    )
    if status == 401:
        return AuthError(
            f"{registry} refused authentication for {what} ({detail})",
            f"log in to {registry} (ci-env login, or docker login with the Docker config "
            "ci-env uses) with credentials that are valid",
        )
    if status == 403 or code == "DENIED":
        return AuthError(
            f"{registry} denied {what} ({detail})",
            "the credentials lack permission: grant them pull, push and delete on the repository",
        )
    if status == 404:
        return NotFoundError(f"{what}: not found on {registry} ({detail})", status=404, code=code)
    if status == 405 or code in _UNSUPPORTED_CODES:
        return UnsupportedError(
            f"{registry} does not support {what} ({detail})",
            "enable deletes in the registry, or choose the native kind with "
            "--repo-container-registry",
            status=status,
            code=code,
        )
    return RegistryError(f"{what} failed on {registry} ({detail})", status=status, code=code)


def check(response: requests.Response, what: str, registry: str, ok: tuple[int, ...] = ()) -> None:
    """Raise the translated error unless the response is 2xx (or in `ok`)."""
    if response.ok or response.status_code in ok:
        return
    raise to_error(response, what, registry)
