"""A tiny registry HTTP session for seeding and checking the test registry.

Deliberately independent of `ci_env.registry` so that tests never seed or verify with the code
under test. Handles Basic auth and the Bearer challenge (one token per scope set).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from tests.support.registry import LocalRegistry

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistrySession(requests.Session):
    def __init__(self, registry: LocalRegistry) -> None:
        super().__init__()
        self.registry = registry
        # Basic only where the registry takes it; a Bearer registry gets the token alone.
        self.auth = (registry.username, registry.password) if registry.auth == "htpasswd" else None
        self._tokens: dict[str, str] = {}

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith("/"):
            url = self.registry.url + url
        response = super().request(method, url, *args, **kwargs)
        header = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and header.startswith("Bearer "):
            params = dict(_CHALLENGE.findall(header))
            token = self._token(params)
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Authorization"] = f"Bearer {token}"
            data = kwargs.get("data")
            if hasattr(data, "seek"):
                data.seek(0)
            response = super().request(method, url, *args, headers=headers, auth=None, **kwargs)
        return response

    def _token(self, params: dict[str, str]) -> str:
        key = params.get("scope", "")
        if key not in self._tokens:
            answer = requests.get(
                params["realm"],
                params={"service": params.get("service", ""), "scope": key},
                auth=(self.registry.username, self.registry.password),
                timeout=10,
            )
            answer.raise_for_status()
            self._tokens[key] = answer.json()["token"]
        return self._tokens[key]
