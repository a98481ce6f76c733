"""Azure Container Registry: list and untag through the ACR data-plane API, no `az` CLI.

Sources: Azure/acr docs "AAD-OAuth" (https://azure.github.io/acr/AAD-OAuth.html) and the ACR
REST reference (Container Registry data plane: Get Tags / Delete Tag):
- an AAD access token (service principal: client-credentials grant at
  login.microsoftonline.com/{tenant}/oauth2/v2.0/token) is traded at `POST /oauth2/exchange`
  (grant_type=access_token) for an ACR refresh token — the same kind `az acr login` stores as
  `identitytoken` in the Docker config;
- the refresh token (or the admin user / service principal as Basic) gets access tokens at
  `/oauth2/token`, which the registry layer's challenge flow already does for every request;
- tags with times: `GET /acr/v1/{repo}/_tags?n=100` (Link pages) -> {tags: [{name, digest,
  createdTime, lastUpdateTime, changeableAttributes}]}. The spec's page cursor `last` is
  lexical ("values lexically after last"), so no `orderby`: a time order would not page;
  untag `DELETE /acr/v1/{repo}/_tags/{tag}` -> 202; delete `DELETE /v2/{repo}/manifests/{digest}`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ClassVar, TypeVar
from urllib.parse import quote

from ci_env import secrets, timeparse
from ci_env.errors import AuthError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import _native_http
from ci_env.registries._native_http import TagRow
from ci_env.registries.base import Description, Image, NativeOption
from ci_env.registries.default import DistributionBackend
from ci_env.registry import responses
from ci_env.registry.auth import Credentials
from ci_env.registry.client import RegistryClient
from ci_env.registry.transport import Transport

LOGIN_URL = "https://login.microsoftonline.com"
# The AAD audience the ACR exchange accepts (Azure/acr AAD-OAuth uses an ARM token).
AAD_SCOPE = "https://management.azure.com/.default"
T = TypeVar("T")

_ROLES = (
    "the identity needs a role that may delete: AcrDelete (with AcrPull to read), "
    "Contributor or Owner on the registry"
)
_CREDENTIALS = (
    "set AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID for a service principal, "
    "or log in to the registry (admin user, service principal, or `az acr login`)"
)


class AcrClient(RegistryClient):
    """The registry client, with credentials from a service principal when one is set."""

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        self._sp_lock = threading.Lock()
        self._sp: Credentials | None = None

    def credentials(self, repository: str = "") -> Credentials | None:
        principal = _principal(self.options)
        if principal is None:
            return super().credentials(repository)
        with self._sp_lock:
            if self._sp is None:
                self._sp = Credentials(identity_token=self._exchange(*principal))
            return self._sp

    def _exchange(self, client_id: str, secret: str, tenant: str) -> str:
        """AAD token for the service principal -> ACR refresh token (`/oauth2/exchange`)."""
        login = _authority(self.options)
        transport = Transport(login.split("://", 1)[-1], self.options)
        try:
            response = transport.send(
                "POST",
                f"{login}/{quote(tenant, safe='')}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                    "scope": AAD_SCOPE,
                },
            )
        finally:
            transport.close()
        if not response.ok:
            raise AuthError(
                f"Azure AD refused the service principal {client_id} ({response.status_code})",
                "check AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID",
            )
        aad = str(responses.json_object(response, "Azure AD's token").get("access_token") or "")
        secrets.register(aad)
        exchanged = self.transport.send(
            "POST",
            "/oauth2/exchange",
            data={
                "grant_type": "access_token",
                "service": self.registry,
                "tenant": tenant,
                "access_token": aad,
            },
        )
        if not exchanged.ok:
            raise AuthError(
                f"{self.registry} refused the Azure AD token of {client_id} "
                f"({exchanged.status_code})",
                _ROLES,
            )
        answer = responses.json_object(exchanged, f"{self.registry}'s token exchange")
        refresh = str(answer.get("refresh_token") or "")
        secrets.register(refresh)
        return refresh


def _authority(options: BackendOptions) -> str:
    """The AAD authority: AZURE_AUTHORITY_HOST as the Azure SDKs read it (sovereign clouds)."""
    host = _native_http.native(options, "azure-authority-host")
    if host and "://" not in host:
        host = "https://" + host  # the SDKs accept a bare host name too
    return (host or options.api_urls.get("azure-login", LOGIN_URL)).rstrip("/")


def _principal(options: BackendOptions) -> tuple[str, str, str] | None:
    client_id = _native_http.native(options, "azure-client-id")
    secret = _native_http.native(options, "azure-client-secret", secret=True)
    tenant = _native_http.native(options, "azure-tenant-id")
    return (client_id, secret, tenant) if client_id and secret and tenant else None


class AcrBackend(DistributionBackend):
    kind: ClassVar[str] = "acr"
    host_patterns: ClassVar[tuple[str, ...]] = (r"[a-z0-9-]+\.azurecr\.(io|cn|us)",)
    try_delete_tag: ClassVar[bool] = False  # the ACR tag API is the documented untag
    untags_natively: ClassVar[bool] = True
    lists_natively: ClassVar[bool] = True
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption(
            "azure-client-id",
            "service principal app id",
            secret=False,
            fallbacks=("AZURE_CLIENT_ID",),
        ),
        NativeOption(
            "azure-client-secret", "service principal secret", fallbacks=("AZURE_CLIENT_SECRET",)
        ),
        NativeOption(
            "azure-tenant-id", "Azure AD tenant id", secret=False, fallbacks=("AZURE_TENANT_ID",)
        ),
        NativeOption(
            "azure-authority-host",
            "Azure AD authority (default https://login.microsoftonline.com)",
            secret=False,
            fallbacks=("AZURE_AUTHORITY_HOST",),
        ),
    )
    description: ClassVar[Description] = Description(
        title="Azure Container Registry",
        auth=(
            "service principal (AZURE_CLIENT_ID/SECRET/TENANT_ID) via /oauth2/exchange, admin "
            "user, or the identitytoken of `az acr login`; no az CLI; AAD authority from "
            "--repo-azure-authority-host / AZURE_AUTHORITY_HOST"
        ),
        listing="GET /acr/v1/<name>/_tags (digest, lastUpdateTime)",
        untag="DELETE /acr/v1/<name>/_tags/<tag>",
        delete="DELETE /v2/<name>/manifests/<digest>",
        cleanup_credentials="role AcrDelete (+ AcrPull), Contributor or Owner",
        limitations=("locked tags or manifests (deleteEnabled=false) are kept",),
    )

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        self.client.close()
        self.client = AcrClient(registry, options)
        self._locked: set[tuple[str, str]] = set()

    def list_images(self, repository: str) -> list[Image]:
        rows: list[TagRow] = []
        path = f"/acr/v1/{repository}/_tags?n=100"  # name order, which `last` pages through
        for page in self._guard(
            lambda: list(
                self.client.pages(path, repository=repository, what=f"tags of {repository}")
            )
        ):
            for item in page.get("tags") or []:
                attributes = item.get("changeableAttributes") or {}
                if attributes.get("deleteEnabled") is False:
                    self._locked.add((repository, str(item.get("name"))))
                rows.append(
                    TagRow(
                        str(item.get("name") or ""),
                        str(item.get("digest") or ""),
                        timeparse.parse_time(item.get("lastUpdateTime") or item.get("createdTime")),
                    )
                )
        return _native_http.group_tags(rows)

    def native_untag(self, repository: str, tag: str) -> str:
        if (repository, tag) in self._locked:
            raise RegistryError(
                f"tag {tag} of {repository} is locked (deleteEnabled=false) in {self.registry}",
                "unlock it (az acr repository update --delete-enabled true) or keep it",
            )
        self._guard(
            lambda: self.client.request(
                "DELETE",
                f"/acr/v1/{repository}/_tags/{quote(tag, safe='')}",
                repository=repository,
                what=f"deleting tag {tag} of {repository}",
            )
        )
        return "ACR API tag delete"

    def delete(self, repository: str, digest: str) -> str:
        return self._guard(lambda: super(AcrBackend, self).delete(repository, digest))

    def _guard(self, action: Callable[[], T]) -> T:
        """Refusals name the Azure roles and credentials instead of generic registry advice."""
        try:
            return action()
        except AuthError as error:
            # ACR answers 401 both for bad credentials and for a token lacking the action.
            denied = "denied" in error.message or "403" in error.message
            hint = _ROLES if denied else f"{_CREDENTIALS}; {_ROLES}"
            raise AuthError(error.message, hint) from None


BACKEND = AcrBackend
