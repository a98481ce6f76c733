"""Docker Hub: list and untag through the Hub API; the registry API refuses deletes.

Hub API (https://docs.docker.com/reference/api/hub/latest/): `POST /v2/auth/token`
{identifier, secret} -> access_token (the legacy `POST /v2/users/login` {username, password}
-> token is the fallback); tags `GET /v2/namespaces/{ns}/repositories/{repo}/tags` paged by
`next`; untag `DELETE /v2/repositories/{ns}/{repo}/tags/{tag}/`. Rate limits come as
`X-RateLimit-*` headers and 429 with `X-Retry-After` (handled by `_native_http`).
"""

from __future__ import annotations

import threading
from typing import ClassVar

from ci_env import secrets, timeparse
from ci_env.errors import AuthError, NotFoundError, UnsupportedError, UsageError
from ci_env.reference import DOCKER_HUB, DOCKER_HUB_API
from ci_env.registries import _native_http
from ci_env.registries._native import NativeBackend
from ci_env.registries._native_http import ApiClient, Hints, TagRow, segment
from ci_env.registries.base import BackendOptions, Description, Image, NativeOption

API_URL = "https://hub.docker.com"

_CREDENTIALS_HINT = (
    "set --repo-docker-hub-token (CIENV_REPO_DOCKER_HUB_TOKEN), or "
    "--repo-docker-hub-username and --repo-docker-hub-password"
)
_PAT_HINT = (
    "Docker Hub deletes tags only for the repository's owner or an admin: a personal access "
    "token needs the 'Read, Write, Delete' scope, an organization access token the delete "
    "permission on the repository; otherwise use the account password with "
    "--repo-docker-hub-username/--repo-docker-hub-password"
)


class DockerHubBackend(NativeBackend):
    kind = "dockerhub"
    host_patterns = (
        r"docker\.io",
        r"index\.docker\.io",
        r"registry-1\.docker\.io",
        r"registry\.hub\.docker\.com",
    )
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption("docker-hub-token", "Docker Hub API token (a JWT from the Hub auth API)"),
        NativeOption("docker-hub-username", "Docker Hub user name", secret=False),
        NativeOption("docker-hub-password", "Docker Hub password or personal access token"),
    )
    description = Description(
        title="Docker Hub",
        auth="Hub token, or user name + password (or access token) exchanged at the Hub API",
        listing="Hub API tags list (digest, tag_last_pushed)",
        untag="Hub API tag delete",
        delete="Hub API: delete every tag of the digest (Hub drops untagged images itself)",
        cleanup_credentials=(
            "--repo-docker-hub-token, or --repo-docker-hub-username + --repo-docker-hub-password"
        ),
        limitations=(
            "a personal access token deletes only with the 'Read, Write, Delete' scope",
            "untagged images cannot be deleted through the API",
        ),
    )

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        # `options` is also the NativeOption ClassVar of Backend; keep a typed handle.
        self.options: BackendOptions = options
        self._token_lock = threading.Lock()
        self._token = _native_http.native(options, "docker-hub-token", secret=True)
        self._username = _native_http.native(options, "docker-hub-username")
        self._password = _native_http.native(options, "docker-hub-password", secret=True)
        self.api = ApiClient(
            options.api_urls.get("dockerhub", API_URL),
            options,
            service="Docker Hub API",
            hints=Hints(auth=_CREDENTIALS_HINT, denied=_PAT_HINT),
            authorization=self._authorization,
        )

    def registry_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    # --- credentials -------------------------------------------------------------------

    def _authorization(self) -> str | None:
        token = self._api_token(required=False)
        return f"Bearer {token}" if token else None

    def _api_token(self, *, required: bool) -> str:
        with self._token_lock:
            if not self._token and self._username and self._password:
                self._token = self._exchange()
                secrets.register(self._token)
        if required and not self._token:
            raise AuthError("Docker Hub deletes tags only through its API", _CREDENTIALS_HINT)
        return self._token

    def _exchange(self) -> str:
        """Trade user name + password (or access token) for a Hub API token."""
        anonymous = ApiClient(
            self.api.base_url,
            self.options,
            service="Docker Hub API",
            hints=Hints(
                auth="check --repo-docker-hub-username and --repo-docker-hub-password",
                denied="check that the account is active and the token not revoked",
            ),
            transport=self.api.transport,
        )
        response = anonymous.call(
            "POST",
            "/v2/auth/token",
            "the Hub login",
            json={"identifier": self._username, "secret": self._password},
            ok=(404, 405),
        )
        if response.status_code in (404, 405):  # Hub deployments without the new endpoint
            body = anonymous.json(
                "POST",
                "/v2/users/login",
                "the Hub login",
                json={"username": self._username, "password": self._password},
            )
            return str(body.get("token") or "")
        body = response.json()
        return str(body.get("access_token") or body.get("token") or "")

    # --- listing -------------------------------------------------------------------------

    def _paths(self, repository: str) -> tuple[str, str]:
        namespace, _, name = repository.partition("/")
        if not name:
            raise UsageError(
                f"Docker Hub repository {repository!r} has no namespace",
                "use NAMESPACE/NAME (official images are library/NAME)",
            )
        return segment(namespace), segment(name)

    def list_images(self, repository: str) -> list[Image]:
        namespace, name = self._paths(repository)
        rows: list[TagRow] = []
        url: str | None = f"/v2/namespaces/{namespace}/repositories/{name}/tags"
        params: dict[str, str | int] | None = {"page_size": 100}
        while url:
            body = self.api.json("GET", url, f"tags of {repository}", params=params)
            params = None  # `next` carries the query
            rows.extend(
                TagRow(
                    str(item.get("name") or ""),
                    str(item.get("digest") or ""),
                    timeparse.parse_time(item.get("tag_last_pushed") or item.get("last_updated")),
                    str(item.get("media_type") or ""),
                )
                for item in body.get("results") or []
            )
            url = body.get("next") or None
        return self.remember(repository, _native_http.group_tags(rows))

    def resolve(self, repository: str, tag: str) -> str | None:
        namespace, name = self._paths(repository)
        try:
            body = self.api.json(
                "GET",
                f"/v2/namespaces/{namespace}/repositories/{name}/tags/{segment(tag)}",
                f"tag {tag} of {repository}",
            )
        except NotFoundError:
            return None
        return str(body.get("digest") or "") or None

    # --- deletion ------------------------------------------------------------------------

    def untag(self, repository: str, tag: str, digest: str) -> str:
        self.check_still_at(repository, tag, digest)
        self._api_token(required=True)
        namespace, name = self._paths(repository)
        self.api.call(
            "DELETE",
            f"/v2/repositories/{namespace}/{name}/tags/{segment(tag)}/",
            f"deleting tag {tag} of {repository}",
        )
        return "Hub API tag delete"

    def delete(self, repository: str, digest: str) -> str:
        if not self.delete_every_tag(repository, digest):
            raise UnsupportedError(
                f"Docker Hub has no API to delete the untagged image {digest} of {repository}",
                "Docker Hub removes untagged images by its own retention",
            )
        return "Hub API tag delete (every tag of the digest)"

    def close(self) -> None:
        self.api.close()
        super().close()


BACKEND = DockerHubBackend
