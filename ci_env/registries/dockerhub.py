"""Docker Hub: list and untag through the Hub API, delete manifests through the registry API.

Hub API reference (https://docs.docker.com/reference/api/hub/latest/, docker/docs
`content/reference/api/hub/latest.yaml`): `POST /v2/auth/token` {identifier, secret} ->
access_token, which "expires in 10 minutes": it is renewed before that and after a 401 (the
deprecated `POST /v2/users/login` {username, password} -> token is the fallback). Tags: `GET
/v2/namespaces/{ns}/repositories/{repo}/tags` paged by `next`; the published `tag` schema has
no digest of the tagged manifest (only `images[].digest`, one per platform), so a tag without
the undocumented top-level `digest` is resolved through the registry API. Untag: `DELETE
/v2/repositories/{ns}/{repo}/tags/{tag}/` is not in the Hub reference (docker/hub-tool and
werf use it); a refusal of it is reported, never taken for success. Delete: Docker's Registry
API reference (`content/reference/api/registry/latest.md`) documents `DELETE
/v2/{name}/manifests/{digest}` on Hub -> 202, or 403 while a tag or another image references
it. Rate limits come as `X-RateLimit-*` headers and 429 with `X-Retry-After` (`_native_http`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from ci_env import secrets, timeparse
from ci_env.credstore import Credentials
from ci_env.errors import AuthError, NotFoundError, RegistryError, UnsupportedError
from ci_env.options import BackendOptions
from ci_env.reference import DOCKER_HUB_API, HUB_ALIASES, api_host
from ci_env.registries import _native_http
from ci_env.registries._native import NativeBackend
from ci_env.registries._native_http import ApiClient, Hints, TagRow, segment
from ci_env.registries.base import Backend, Description, Image, NativeOption, split_repository
from ci_env.registries.default import DistributionBackend
from ci_env.registry import responses
from ci_env.registry.client import RegistryClient

logger = logging.getLogger(__name__)

API_URL = "https://hub.docker.com"
TOKEN_LIFETIME = 600.0  # the Hub reference: the access token "expires in 10 minutes"
RENEW_MARGIN = 60.0  # renew this long before, so a request never carries a dying token

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
    host_patterns = tuple(re.escape(alias) for alias in sorted(HUB_ALIASES))
    list_workers: ClassVar[int] = 8  # registry HEADs for tags the listing gives no digest for
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption("docker-hub-token", "Docker Hub API token (a JWT from the Hub auth API)"),
        NativeOption("docker-hub-username", "Docker Hub user name", secret=False),
        NativeOption("docker-hub-password", "Docker Hub password or personal access token"),
    )
    description = Description(
        title="Docker Hub",
        auth="Hub token, or user name + password (or access token) exchanged at the Hub API",
        listing="Hub API tags list (tag_last_pushed); digests the schema lacks via the registry",
        untag="Hub API tag delete",
        delete="Hub API: delete every tag of the digest, then the registry API manifest delete",
        cleanup_credentials=(
            "--repo-docker-hub-token, or --repo-docker-hub-username + --repo-docker-hub-password"
        ),
        limitations=(
            "a personal access token deletes only with the 'Read, Write, Delete' scope",
            "the Hub tag delete endpoint is not in Docker's published reference",
            "a manifest another image references is kept (403)",
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
        self.clock: Callable[[], float] = time.monotonic
        self._token_born: float | None = None  # None: given by the user, lifetime unknown
        self.api = ApiClient(
            options.api_urls.get("dockerhub", API_URL),
            options,
            service="Docker Hub API",
            hints=Hints(auth=_CREDENTIALS_HINT, denied=_PAT_HINT),
            authorization=self._authorization,
            renew=self._renew,
        )

    def registry_host(self) -> str:
        return api_host(self.registry)

    @property
    def distribution(self) -> Backend:
        return self._registry()

    def _registry(self) -> DistributionBackend:
        """The registry side; on Hub's own registry a Hub user name and password log in there
        too (its token service takes the same account or access token)."""
        with self._registry_lock:
            if not isinstance(self._registry_side, DistributionBackend):
                side = DistributionBackend(self.registry_host(), self.options)
                if self._can_exchange() and self.registry_host() == DOCKER_HUB_API:
                    side.client.close()
                    login = Credentials(username=self._username, password=self._password)
                    side.client = RegistryClient(self.registry_host(), self.options, login)
                self._registry_side = side
            return self._registry_side

    # --- credentials -------------------------------------------------------------------

    def _authorization(self) -> str | None:
        token = self._api_token(required=False)
        return f"Bearer {token}" if token else None

    def _api_token(self, *, required: bool) -> str:
        with self._token_lock:
            if self._can_exchange() and (not self._token or self._expiring()):
                self._new_token()
            token = self._token
        if required and not token:
            raise AuthError("Docker Hub deletes tags only through its API", _CREDENTIALS_HINT)
        return token

    def _can_exchange(self) -> bool:
        return bool(self._username and self._password)

    def _expiring(self) -> bool:
        born = self._token_born
        return born is not None and self.clock() - born >= TOKEN_LIFETIME - RENEW_MARGIN

    def _new_token(self) -> None:
        self._token = self._exchange()
        self._token_born = self.clock()
        secrets.register(self._token)

    def _renew(self, refused: str) -> bool:
        """After a 401: exchange again unless another thread already did (Hub tokens expire
        after 10 minutes; a clock that slept, e.g. a suspended runner, can outlive them)."""
        if not self._can_exchange():
            return False
        with self._token_lock:
            if refused == f"Bearer {self._token}":
                self._new_token()
        return True

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
        body = responses.json_object(response, "the Hub login")
        return str(body.get("access_token") or body.get("token") or "")

    # --- listing -------------------------------------------------------------------------

    def _paths(self, repository: str) -> tuple[str, str]:
        namespace, name = split_repository(
            repository,
            f"Docker Hub repository {repository!r} has no namespace",
            "use NAMESPACE/NAME (official images are library/NAME)",
        )
        return segment(namespace), segment(name)

    def list_images(self, repository: str) -> list[Image]:
        namespace, name = self._paths(repository)
        items: list[dict[str, Any]] = []
        url: str | None = f"/v2/namespaces/{namespace}/repositories/{name}/tags"
        params: dict[str, str | int] | None = {"page_size": 100}
        while url:
            body = self.api.json("GET", url, f"tags of {repository}", params=params)
            params = None  # `next` carries the query
            items.extend(item for item in body.get("results") or [] if isinstance(item, dict))
            url = body.get("next") or None
        workers = max(1, min(self.list_workers, len(items)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(lambda item: self._row(repository, item), items))
        return self.remember(repository, _native_http.group_tags(rows))

    def _row(self, repository: str, item: dict[str, Any]) -> TagRow:
        tag = str(item.get("name") or "")
        # Hub's registry HEAD does not count against its pull limits.
        digest = _tag_digest(item) or self.distribution.resolve(repository, tag) or ""
        return TagRow(
            tag,
            digest,
            timeparse.parse_time(item.get("tag_last_pushed") or item.get("last_updated")),
            str(item.get("media_type") or ""),
        )

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
        return _tag_digest(body) or self.distribution.resolve(repository, tag)

    # --- deletion ------------------------------------------------------------------------

    def untag(self, repository: str, tag: str, digest: str) -> str:
        self.check_still_at(repository, tag, digest)
        self._api_token(required=True)
        namespace, name = self._paths(repository)
        what = f"deleting tag {tag} of {repository}"
        response = self.api.call(
            "DELETE",
            f"/v2/repositories/{namespace}/{name}/tags/{segment(tag)}/",
            what,
            ok=(405, 410, 501),
        )
        if response.status_code in (405, 410, 501):
            # The endpoint is not in Docker's published reference: it may go away.
            raise UnsupportedError(
                f"Docker Hub refused {what} ({response.status_code}): its tag delete endpoint "
                "is not part of the published Hub API",
                "delete the tag in the Docker Hub web UI, or report it to ci-env",
                status=response.status_code,
            )
        return "Hub API tag delete"

    def delete(self, repository: str, digest: str) -> str:
        untagged = self.delete_every_tag(repository, digest)
        try:
            self._delete_manifest(repository, digest)
        except NotFoundError:
            if not untagged:
                raise
            return "Hub API tag delete (every tag of the digest; Hub removed the manifest)"
        except AuthError as error:
            if not untagged:
                raise
            # The image is untagged, as asked; only the registry login may not delete.
            logger.warning("%s: %s (%s)", self.registry, error.message, error.hint)
            return "Hub API tag delete (every tag of the digest; the manifest stays untagged)"
        if untagged:
            return "Hub API tag delete (every tag of the digest) + registry API manifest delete"
        return "registry API manifest delete"

    def _delete_manifest(self, repository: str, digest: str) -> None:
        """Docker's Registry reference: 202 deleted, 403 still referenced (or not allowed)."""
        what = f"DELETE manifest {repository}@{digest}"
        response = self._registry().client.request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            repository=repository,
            what=what,
            ok=(403,),
        )
        if response.status_code == 403:
            raise RegistryError(
                f"Docker Hub keeps {digest} of {repository} (403): a tag or another image "
                "still references it, or the registry login may not delete",
                "delete the image that references it first; the registry login (docker login "
                "docker.io) needs delete rights on the repository",
                status=403,
            )

    def close(self) -> None:
        self.api.close()
        super().close()


def _tag_digest(item: dict[str, Any]) -> str | None:
    # Hub answers a top-level `digest` (the tagged manifest, an index for multi-platform
    # images) that its published schema omits; `images[].digest` are platform images.
    digest = item.get("digest")
    return digest if isinstance(digest, str) and digest else None


BACKEND = DockerHubBackend
