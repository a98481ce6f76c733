"""Harbor: artifacts API for listing, untag and delete (the registry API refuses tag deletes).

Harbor API v2.0 (swagger `api/v2.0/swagger.yaml`, artifact tag; goharbor/harbor server
source): `GET /api/v2.0/projects/{project}/repositories/{repo}/artifacts?with_tag=true&
with_accessory=true&with_immutable_status=true&page&page_size` (`Link` rel=next,
`X-Total-Count`) -> [{digest, push_time, manifest_media_type, tags: [{name, push_time,
immutable}], references: [{child_digest}], accessories: [{digest, type}]}]. `immutable` is
only computed with with_immutable_status=true. Without `q=base=*` Harbor lists top-level
artifacts only, children of an index and accessories hidden: that is the listing wanted here,
since deleting an artifact cascades to its unreferenced children and its accessories, which
its `accessories` field names for the digest graph. Untag `DELETE
.../artifacts/{digest}/tags/{tag}`; delete `DELETE .../artifacts/{digest}`. A `/` in {repo} is
encoded twice (a/b -> a%252Fb). Both refusals are 412 and reported, not retried: PRECONDITION
for an immutable tag, VIOLATE_FOREIGN_KEY_CONSTRAINT for an artifact another references.
PROJECTPOLICYVIOLATION comes only from the registry side (manifest GET/HEAD blocked by a
vulnerability or signature policy while a scan runs): retried with backoff there.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from ci_env import credstore, secrets, timeparse
from ci_env.errors import CiEnvError, NotFoundError, RegistryError, UsageError
from ci_env.options import BackendOptions
from ci_env.reference import api_host
from ci_env.registries import _native_http
from ci_env.registries._native import NativeBackend
from ci_env.registries._native_http import ApiClient, ApiTransport, Hints
from ci_env.registries.base import Backend, Description, Image, NativeOption, V2Answer
from ci_env.registries.default import DistributionBackend
from ci_env.registry import responses
from ci_env.registry.client import RegistryClient
from ci_env.registry.transport import Transport

_AUTH_HINT = (
    "set --repo-harbor-username and --repo-harbor-password (a robot account works, "
    "user name robot$NAME), or log in to the registry with those credentials"
)
_DENIED_HINT = (
    "the account needs delete rights in the project: a robot account with the artifact "
    "'delete' and tag 'delete' permissions, or the Maintainer / Project Admin role"
)
_PRECONDITION_HINT = (
    "Harbor keeps immutable tags and artifacts that another artifact (an index) references; "
    "change the project's tag immutability rules or leave them out of the cleanup"
)
_REFERENCED_HINT = (
    "another artifact (an index) references it: Harbor deletes it with that artifact, so "
    "clean up the referencing artifact instead"
)


def _policy_violation(response: requests.Response) -> bool:
    # werf PR #6123: a project policy (e.g. a scan still running) refuses a pull for a while;
    # Harbor's vulnerable/content-trust middlewares answer it to manifest GET/HEAD only.
    return response.status_code == 412 and "PROJECTPOLICYVIOLATION" in response.text


class HarborBackend(NativeBackend):
    kind = "harbor"
    host_patterns = (r"harbor\..*", r"demo\.goharbor\.io")
    delete_cascades: ClassVar[bool] = True  # an artifact delete takes unreferenced children
    lists_untagged = True
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption("harbor-username", "Harbor user or robot account (robot$NAME)", secret=False),
        NativeOption("harbor-password", "Harbor password or robot account secret"),
    )
    description = Description(
        title="Harbor",
        auth="Basic (users and robot accounts); the registry login is used when unset",
        listing="Harbor artifacts API (tags, push_time, references)",
        untag="Harbor API tag delete",
        delete="Harbor API artifact delete (cascades to unreferenced children, accessories)",
        cleanup_credentials=(
            "--repo-harbor-username + --repo-harbor-password, or the registry login; "
            "artifact and tag delete permission"
        ),
        limitations=("immutable tags and artifacts referenced by an index are kept (412)",),
    )

    @classmethod
    def recognize(cls, answer: V2Answer) -> str | None:
        if answer.realm.endswith("/service/token"):
            return f"its token realm {answer.realm} is Harbor's"
        return None

    @classmethod
    def probe(cls, registry: str, options: BackendOptions) -> str | None:
        """Harbor's own API answers where its registry uses Basic auth (no token realm)."""
        transport = Transport(api_host(registry), options)
        try:
            info = transport.send("GET", "/api/v2.0/systeminfo")
        finally:
            transport.close()
        try:
            body = responses.loads(info.content) if info.ok else None
        except ValueError:
            body = None
        if isinstance(body, dict) and "harbor_version" in body:
            return "it serves Harbor's /api/v2.0/systeminfo"
        return None

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        # `options` is also the NativeOption ClassVar of Backend; keep a typed handle.
        self.options: BackendOptions = options
        base = _native_http.api_base("harbor", registry, options)
        host = base.split("://", 1)[-1].split("/", 1)[0]
        self._auth_lock = threading.Lock()
        self._basic: str | None = None
        self.api = ApiClient(
            base.rstrip("/") + "/api/v2.0",
            options,
            service="Harbor API",
            hints=Hints(auth=_AUTH_HINT, denied=_DENIED_HINT),
            authorization=self._authorization,
            transport=ApiTransport(host, options),
        )
        self._immutable: set[tuple[str, str]] = set()
        self._accessories: dict[tuple[str, str], list[str]] = {}

    @property
    def distribution(self) -> Backend:
        """The registry side, whose transport waits out PROJECTPOLICYVIOLATION."""
        with self._registry_lock:
            if self._registry_side is None:
                side = DistributionBackend(self.registry_host(), self.options)
                side.client.close()
                transport = ApiTransport(
                    self.registry_host(), self.options, retry_if=_policy_violation
                )
                side.client = RegistryClient(
                    self.registry_host(), self.options, transport=transport
                )
                self._registry_side = side
            return self._registry_side

    def _authorization(self) -> str | None:
        with self._auth_lock:
            if self._basic is None:
                user = _native_http.native(self.options, "harbor-username")
                password = _native_http.native(self.options, "harbor-password", secret=True)
                if not (user and password):
                    found = credstore.load_credentials(self.options.docker_config, self.registry)
                    if found and found.username:
                        user, password = found.username, found.password
                raw = base64.b64encode(f"{user}:{password}".encode()).decode()
                secrets.register(raw)
                self._basic = f"Basic {raw}" if user and password else ""
            return self._basic or None

    def _artifacts(self, repository: str) -> str:
        project, _, name = repository.partition("/")
        if not name:
            raise UsageError(
                f"Harbor repository {repository!r} has no project",
                "use HOST/PROJECT/REPOSITORY",
            )
        twice = quote(quote(name, safe=""), safe="")
        return f"/projects/{quote(project, safe='')}/repositories/{twice}/artifacts"

    def list_images(self, repository: str) -> list[Image]:
        params = {
            "with_tag": "true",
            "with_accessory": "true",
            "with_immutable_status": "true",
            "page_size": "100",
            "page": "1",
        }
        images: list[Image] = []
        for page in self.api.link_pages(
            self._artifacts(repository), f"artifacts of {repository}", params=params
        ):
            images.extend(self._image(repository, artifact) for artifact in page or [])
        return images

    def _image(self, repository: str, artifact: dict[str, Any]) -> Image:
        digest = str(artifact.get("digest") or "")
        tags: list[dict[str, Any]] = [t for t in artifact.get("tags") or [] if isinstance(t, dict)]
        for tag in tags:
            if tag.get("immutable"):
                self._immutable.add((repository, str(tag.get("name"))))
        accessories: list[Any] = artifact.get("accessories") or []
        self._accessories[(repository, digest)] = [
            str(item.get("digest")) for item in accessories if isinstance(item, dict)
        ]
        pushed = _native_http.latest(
            timeparse.parse_time(artifact.get("push_time")),
            *(timeparse.parse_time(tag.get("push_time")) for tag in tags),
        )
        return Image(
            digest,
            tuple(sorted(str(tag.get("name")) for tag in tags)),
            pushed=pushed,
            media_type=str(artifact.get("manifest_media_type") or artifact.get("media_type") or ""),
        )

    def referrers(self, repository: str, digest: str) -> list[str]:
        known = self._accessories.get((repository, digest))
        return list(known) if known is not None else super().referrers(repository, digest)

    def resolve(self, repository: str, tag: str) -> str | None:
        try:
            body = self.api.json(
                "GET",
                f"{self._artifacts(repository)}/{quote(tag, safe='')}",
                f"tag {tag} of {repository}",
                params={"with_tag": "false"},
            )
        except NotFoundError:
            return None
        return str(body.get("digest") or "") or None

    def untag(self, repository: str, tag: str, digest: str) -> str:
        if (repository, tag) in self._immutable:
            raise RegistryError(
                f"tag {tag} of {repository} is immutable in Harbor", _PRECONDITION_HINT, status=412
            )
        # Addressing the tag under its digest means a tag moved elsewhere is not touched.
        self._call_delete(
            f"{self._artifacts(repository)}/{digest}/tags/{quote(tag, safe='')}",
            f"deleting tag {tag} of {repository}",
        )
        return "Harbor API tag delete"

    def delete(self, repository: str, digest: str) -> str:
        self._call_delete(
            f"{self._artifacts(repository)}/{digest}", f"deleting artifact {digest} of {repository}"
        )
        return "Harbor API artifact delete"

    def _call_delete(self, path: str, what: str) -> None:
        try:
            self.api.call("DELETE", path, what)
        except CiEnvError as error:
            if isinstance(error, RegistryError) and error.status == 412:
                referenced = error.code == "VIOLATE_FOREIGN_KEY_CONSTRAINT"
                raise RegistryError(
                    f"Harbor refused {what}: {error.message}",
                    _REFERENCED_HINT if referenced else _PRECONDITION_HINT,
                    status=412,
                    code=error.code,
                ) from None
            raise

    def close(self) -> None:
        self.api.close()
        super().close()


BACKEND = HarborBackend
