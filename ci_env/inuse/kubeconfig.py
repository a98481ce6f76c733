"""Kubeconfig shapes and secrets, checked before the Kubernetes client reads the file.

The client assumes the documented shape (clientcmd `Config`: `clusters`, `contexts`, `users`
are lists of `{name, cluster|context|user}`; `*-data` fields are base64) and fails with a
TypeError, KeyError or binascii.Error otherwise: here that is a usage error naming the key.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ci_env import secrets
from ci_env.errors import UsageError

_SECTIONS = {"clusters": "cluster", "contexts": "context", "users": "user"}
_BASE64 = ("certificate-authority-data", "client-certificate-data", "client-key-data")
_HINT = "fix the kubeconfig (kubectl config view shows what the client reads)"
_USER_SECRETS = ("token", "password", "client-key-data")
_PROVIDER_SECRETS = ("access-token", "id-token", "refresh-token", "client-secret")


def _bad(where: str, key: str, what: str) -> UsageError:
    return UsageError(f"kubeconfig {where}: {key} {what}", _HINT)


def _check_entry(where: str, key: str, entry: object) -> None:
    if not isinstance(entry, dict):
        raise _bad(where, key, "is not a mapping")
    if not isinstance(entry.get("name"), str) or not entry["name"]:
        raise _bad(where, f"{key}.name", "is missing (every entry needs a name)")
    inner = entry.get(_SECTIONS[key.partition("[")[0]])
    inner_key = f"{key}.{_SECTIONS[key.partition('[')[0]]}"
    if inner is not None and not isinstance(inner, dict):
        raise _bad(where, inner_key, "is not a mapping")
    for field in _BASE64:
        value = (inner or {}).get(field)
        if value is None:
            continue
        try:
            base64.b64decode(str(value))
        except (binascii.Error, ValueError):
            raise _bad(where, f"{inner_key}.{field}", "is not valid base64") from None


def check(data: object, where: str) -> None:
    """Raise a UsageError naming `where` and the key when `data` is no kubeconfig shape."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise _bad(where, "the top level", f"is a {type(data).__name__}, not a mapping")
    for section in _SECTIONS:
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise _bad(where, section, f"is a {type(entries).__name__}, not a list")
        for index, entry in enumerate(entries):
            _check_entry(where, f"{section}[{index}]", entry)


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def register_secrets(data: object) -> None:
    """Credentials in a kubeconfig must never be printed, even inside a client error."""
    users = _dig(data, "users")
    for user in users if isinstance(users, list) else ():
        values = [_dig(user, "user", key) for key in _USER_SECRETS]
        values += [_dig(user, "user", "auth-provider", "config", k) for k in _PROVIDER_SECRETS]
        for value in values:
            if isinstance(value, str) and value:
                secrets.register(value)


def register_client_secrets(api_key: object) -> None:
    """The client's resolved credentials (`Bearer <token>`, from exec plugins too)."""
    for value in api_key.values() if isinstance(api_key, dict) else ():
        if isinstance(value, str) and value:
            secrets.register(value)
            secrets.register(value.partition(" ")[2])
