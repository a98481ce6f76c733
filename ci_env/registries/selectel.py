"""Selectel Container Registry (cr.selcloud.ru): Docker Registry API plus the CR API for deletes.

Follows werf's Selectel driver (pkg/docker_registry/selectel.go, 2022-2024; Selectel's own API
reference was not available to us): a Keystone v3 token from the Selectel identity API
(`POST /identity/v3/auth/tokens`, password method, domain = account, project = VPC name or
id; token in `X-Subject-Token`), the registry id from `GET /api/v1/registries`, and deletes
`DELETE /api/v1/repositories/{repo}/{digest}?registryId=` -> 204. Without those credentials
the plain registry API digest delete is used. Selectel's rate limits are low: 429 waits for
`Retry-After` plus jitter and requests are paced to a conservative default rate.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from ci_env import secrets
from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import _native_http
from ci_env.registries._native_http import ApiClient, ApiTransport, Hints, segment
from ci_env.registries.base import Description, NativeOption
from ci_env.registries.default import DistributionBackend
from ci_env.registry.client import RegistryClient

IDENTITY_URL = "https://api.selvpc.ru/identity/v3"
DEFAULT_RATE = 2.0  # requests per second: well under Selectel's limits (unpublished)
JITTER = (1.0, 5.0)  # seconds added to each rate-limit wait, so parallel jobs spread out
PAGE = 100  # registries a page (the API's default is 10; a project holds at most 100)
MAX_PAGES = 50  # a bound against a service that ignores offset

_CREDENTIALS = (
    "set --repo-selectel-username, --repo-selectel-password, --repo-selectel-account and "
    "--repo-selectel-vpc (or --repo-selectel-vpc-id)"
)
_VPC_ID_FLAKY = (
    "Selectel sometimes refuses tokens scoped by VPC id: pass the VPC (project) name with "
    "--repo-selectel-vpc instead"
)


class SelectelBackend(DistributionBackend):
    kind: ClassVar[str] = "selectel"
    host_patterns: ClassVar[tuple[str, ...]] = (r"cr\.selcloud\.ru",)
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption("selectel-username", "Selectel service user name", secret=False),
        NativeOption("selectel-password", "Selectel service user password"),
        NativeOption("selectel-account", "Selectel account (domain) id", secret=False),
        NativeOption("selectel-vpc", "Selectel VPC (project) name", secret=False),
        NativeOption("selectel-vpc-id", "Selectel VPC (project) id", secret=False),
        NativeOption(
            "selectel-identity-url", f"Selectel identity API (default {IDENTITY_URL})", secret=False
        ),
    )
    description: ClassVar[Description] = Description(
        title="Selectel CRaaS",
        auth=(
            "Docker config credentials (token login); Keystone token for the CR API "
            "(identity API: --repo-selectel-identity-url)"
        ),
        listing="GET /v2/<name>/tags/list, each tag resolved with one manifest GET",
        untag="DELETE /v2 manifest by tag, else a throwaway manifest deleted by digest",
        delete="CR API DELETE /api/v1/repositories/<repo>/<digest> (else /v2 digest delete)",
        cleanup_credentials=("--repo-selectel-username/-password/-account and -vpc or -vpc-id"),
        oci_artifacts="not tested",
        limitations=(
            "low API rate limits: requests are paced and 429 waits for Retry-After plus jitter",
            "images at the registry root (cr.selcloud.ru/REGISTRY) cannot be deleted",
            "tokens scoped by VPC id are sometimes refused: prefer the VPC name",
        ),
    )

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        # `options` is also the NativeOption ClassVar of Backend; keep a typed handle.
        self.options: BackendOptions = options
        self.transport = ApiTransport(registry, options, jitter=JITTER, default_rate=DEFAULT_RATE)
        self.client.close()
        self.client = RegistryClient(registry, options, transport=self.transport)
        self._lock = threading.Lock()
        self._token = ""
        self._registry_ids: dict[str, str] = {}
        base = _native_http.api_base("selectel", registry, options)
        self.api = ApiClient(
            base.rstrip("/") + "/api/v1",
            options,
            service="Selectel CR API",
            hints=Hints(
                auth=_CREDENTIALS,
                denied=f"the service user needs the registry's "
                f"write/delete role in the project; {_CREDENTIALS}",
            ),
            authorization=lambda: None,
            transport=self.transport,
        )

    def _native_credentials(self) -> dict[str, str] | None:
        values = {
            name: _native_http.native(self.options, f"selectel-{name}", secret=name == "password")
            for name in ("username", "password", "account", "vpc", "vpc-id")
        }
        if not (values["username"] and values["password"] and values["account"]):
            return None
        if not (values["vpc"] or values["vpc-id"]):
            raise AuthError("Selectel needs the VPC to scope its token", _CREDENTIALS)
        return values

    def _keystone_token(self, creds: dict[str, str]) -> str:
        with self._lock:
            if self._token:
                return self._token
            domain = {"name": creds["account"]}
            project = (
                {"id": creds["vpc-id"]}
                if creds["vpc-id"] and not creds["vpc"]
                else {
                    "name": creds["vpc"],
                    "domain": domain,
                }
            )
            user = {"name": creds["username"], "domain": domain, "password": creds["password"]}
            body = {
                "auth": {
                    "identity": {"methods": ["password"], "password": {"user": user}},
                    "scope": {"project": project},
                }
            }
            identity = (
                _native_http.native(self.options, "selectel-identity-url")
                or self.options.api_urls.get("selectel-identity", IDENTITY_URL)
            ).rstrip("/")
            response = self.transport.send("POST", f"{identity}/auth/tokens", json=body)
            if not response.ok:
                hint = _VPC_ID_FLAKY if "id" in project else _CREDENTIALS
                raise AuthError(
                    f"the Selectel identity API refused the credentials ({response.status_code})",
                    hint,
                )
            self._token = response.headers.get("X-Subject-Token", "")
            secrets.register(self._token)
            return self._token

    def _split(self, repository: str) -> tuple[str, str]:
        name, _, image = repository.partition("/")
        if not image:
            raise RegistryError(
                f"{self.registry}/{repository} is the root of a Selectel registry, where "
                "Selectel's API cannot delete anything",
                f"push images under {self.registry}/{repository}/IMAGE and clean that up",
            )
        return name, image

    def _registry_id(self, name: str, token: str) -> str:
        with self._lock:
            if name in self._registry_ids:
                return self._registry_ids[name]
        found = self._registries(token)
        if name not in found:
            raise RegistryError(
                f"Selectel has no registry {name!r} in this project",
                "check --repo-selectel-vpc/--repo-selectel-vpc-id and the repository address",
            )
        with self._lock:
            self._registry_ids.update(found)
        return found[name]

    def _registries(self, token: str) -> dict[str, str]:
        """Every registry of the project, name -> id, over `limit`/`offset` pages."""
        found: dict[str, str] = {}
        for page in range(MAX_PAGES):
            body = self.api.json(
                "GET",
                "/registries",
                "listing Selectel registries",
                params={"limit": PAGE, "offset": page * PAGE},
                headers={"X-Auth-Token": token},
            )
            items = [item for item in body or [] if isinstance(item, dict)]
            found.update({str(item.get("name")): str(item.get("id")) for item in items})
            if len(items) < PAGE:
                break
        return found

    def untag(self, repository: str, tag: str, digest: str) -> str:
        self._split(repository)
        return super().untag(repository, tag, digest)

    def delete(self, repository: str, digest: str) -> str:
        name, image = self._split(repository)
        creds = self._native_credentials()
        if creds is None:
            return super().delete(repository, digest)
        token = self._keystone_token(creds)
        registry_id = self._registry_id(name, token)
        # werf's form first, then the whole path as one segment (`/` as %2F).
        nested = "/".join(segment(part) for part in image.split("/"))
        forms = list(dict.fromkeys((nested, segment(image))))
        for form in forms[:-1]:
            try:
                self._cr_delete(form, digest, repository, registry_id, token)
            except NotFoundError:
                continue
            return "Selectel CR API delete"
        self._cr_delete(forms[-1], digest, repository, registry_id, token)
        return "Selectel CR API delete"

    def _cr_delete(
        self, path: str, digest: str, repository: str, registry: str, token: str
    ) -> None:
        self.api.call(
            "DELETE",
            f"/repositories/{path}/{digest}",
            f"deleting {digest} of {repository}",
            params={"registryId": registry},
            headers={"X-Auth-Token": token},
        )


BACKEND = SelectelBackend
