"""JFrog Artifactory: the Docker Registry API, with Artifactory's own tag delete as the untag.

JFrog docs "Deletion and cleanup of Docker tags and repositories": `DELETE
/artifactory/<docker repository key>/<image>/<tag>` removes one tag (each tag is its own folder,
so the other tags of the digest stay). Address mapping: with the repository path method (the
default on *.jfrog.io) `HOST/<repo-key>/<image>` is served as `/v2/<repo-key>/<image>/...`, so
the first path component is the repository key. For the subdomain or port method, where the
address has no key, name it with --repo-artifactory-repository. The registry API delete by tag
is tried first; the native delete is used where the registry API refuses it.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from ci_env.errors import NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import _native_http
from ci_env.registries.base import Description, NativeOption, V2Answer, split_repository
from ci_env.registries.default import DistributionBackend
from ci_env.registry.transport import Transport


class ArtifactoryBackend(DistributionBackend):
    kind: ClassVar[str] = "artifactory"
    host_patterns: ClassVar[tuple[str, ...]] = (r".*\.jfrog\.io", r"artifactory\..*")
    untags_natively: ClassVar[bool] = True
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption(
            "artifactory-repository",
            "Docker repository key when the address has none (subdomain or port method)",
            secret=False,
        ),
    )
    description: ClassVar[Description] = Description(
        title="JFrog Artifactory",
        auth="Docker config credentials (user + password, API key or access token)",
        listing="GET /v2/<repo-key>/<image>/tags/list, each tag resolved with one manifest GET",
        untag="DELETE /v2 manifest by tag, else DELETE /artifactory/<repo-key>/<image>/<tag>",
        delete="DELETE /v2/<repo-key>/<image>/manifests/<digest>",
        cleanup_credentials="Delete/Overwrite permission on the Docker repository",
        limitations=(
            "the first path component is the repository key (repository path method); "
            "set --repo-artifactory-repository for the subdomain or port method",
        ),
    )

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        # `options` is also the NativeOption ClassVar of Backend; keep a typed handle.
        self.options: BackendOptions = options

    @classmethod
    def recognize(cls, answer: V2Answer) -> str | None:
        if "X-Artifactory-Id" in answer.headers:
            return "it sends an X-Artifactory-Id header"
        return None

    @classmethod
    def probe(cls, registry: str, options: BackendOptions) -> str | None:
        """Artifactory's ping answers `OK` (behind a proxy that drops X-Artifactory-Id)."""
        transport = Transport(registry, options)
        try:
            response = transport.send("GET", "/artifactory/api/system/ping")
            if response.ok and response.text.strip() == "OK":
                return f"the {cls.kind} backend recognised it"
            return None
        except RegistryError:
            return None
        finally:
            transport.close()

    def storage_path(self, repository: str) -> tuple[str, str]:
        """(repository key, image path) of a repository address."""
        key = _native_http.native(self.options, "artifactory-repository")
        if key:
            prefix = key + "/"
            return key, repository[len(prefix) :] if repository.startswith(prefix) else repository
        return split_repository(
            repository,
            f"{self.registry}/{repository} names no Artifactory repository key and image",
            "use HOST/<repo-key>/<image>, or set --repo-artifactory-repository",
        )

    def native_untag(self, repository: str, tag: str) -> str:
        key, image = self.storage_path(repository)
        path = "/artifactory/" + "/".join(
            quote(part, safe="") for part in (key, *image.split("/"), tag)
        )
        try:
            self.client.request(
                "DELETE", path, repository=repository, what=f"deleting tag {tag} of {repository}"
            )
        except NotFoundError:
            raise
        return "Artifactory API tag delete"


BACKEND = ArtifactoryBackend
