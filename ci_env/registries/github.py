"""GitHub Packages (ghcr.io): versions through the REST API, manifests through the registry.

On GHCR a package version *is* a manifest digest: deleting a version removes it with every
tag, and the registry answers 405 to manifest deletes. So:
- listing = the package's versions (tagged and untagged, 100 a page, with times);
- delete = DELETE of the digest's version;
- untag = push a unique throwaway manifest to the tag through the registry API (the tag moves
  to it; the old digest keeps its other tags), then delete the version that now holds only
  that tag.
Index children and referrers are separate untagged versions; the digest graph, fed by the
registry side (inherited from `DistributionBackend`), keeps those a kept index still needs.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from ci_env import lazy, secrets
from ci_env.errors import NotFoundError, RegistryError, UsageError
from ci_env.options import BackendOptions
from ci_env.registries.base import Description, Image, NativeOption, split_repository
from ci_env.registries.default import DistributionBackend
from ci_env.registry.untag import still_at, throwaway_manifest

UNTAG_METHOD = "throwaway manifest + GitHub API version delete"
DELETE_METHOD = "GitHub API version delete"


def split(repository: str) -> tuple[str, str]:
    """(owner, package) of `owner/package[/more]`; the package keeps its slashes."""
    return split_repository(
        repository,
        f"{repository!r} names no package",
        "GitHub Packages repositories are ghcr.io/<owner>/<package>",
    )


class GithubBackend(DistributionBackend):
    kind: ClassVar[str] = "github"
    description: ClassVar[Description] = Description(
        title="GitHub Packages (ghcr.io)",
        auth="registry: Docker config (GITHUB_ACTOR + GITHUB_TOKEN from `ci-env login`); "
        "API: --repo-github-token / CIENV_REPO_GITHUB_TOKEN, WERF_REPO_GITHUB_TOKEN, "
        "GITHUB_TOKEN (GITHUB_API_URL for GitHub Enterprise Server)",
        listing="GitHub REST package versions (100 a page; tags, created/updated time, "
        "untagged versions too)",
        untag="throwaway manifest pushed to the tag, then its version deleted via the REST API",
        delete="GitHub REST DELETE of the package version (the digest and all its tags)",
        cleanup_credentials="a token with read:packages and delete:packages and admin on the "
        "package; the Actions GITHUB_TOKEN needs `permissions: packages: write` and the "
        "package linked to the repository",
        limitations=(
            "the registry answers 405 to manifest deletes: only the REST API deletes",
            "public versions with more than 5000 downloads cannot be deleted",
            "deletes are paced to ~180 a minute (GitHub's secondary rate limits)",
        ),
    )
    host_patterns: ClassVar[tuple[str, ...]] = (r"ghcr\.io", r"docker\.pkg\.github\.com")
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption(
            "github-token",
            "GitHub token with read:packages and delete:packages for cleanup",
            fallbacks=("GITHUB_TOKEN",),
        ),
    )
    lists_untagged: ClassVar[bool] = True
    try_delete_tag: ClassVar[bool] = False  # GHCR answers 405
    lists_natively: ClassVar[bool] = True
    deletes_per_minute: ClassVar[float] = 180.0
    # How long a freshly pushed throwaway may take to show up as a version.
    version_wait: ClassVar[tuple[float, ...]] = (0.5, 1.0, 2.0, 4.0)

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        token = (options.native.get("github-token") or "").strip()
        secrets.register(token)
        per_minute = self.deletes_per_minute
        if options.max_requests_per_second:
            per_minute = min(per_minute, options.max_requests_per_second * 60)
        # Imported here: PyGithub takes ~0.6 s to import, most runs never need it, and it is
        # the optional extra ci-env[github].
        try:
            from ci_env.registries._github_api import PackagesApi  # noqa: PLC0415
        except ModuleNotFoundError as error:
            raise lazy.missing_extra(error) or error from None

        self.api = PackagesApi(options, token, per_minute)
        self._versions: dict[tuple[str, str], int] = {}  # (repository, digest) -> version id
        self._lock = threading.Lock()

    @property
    def wait_seconds(self) -> float:
        """Time spent waiting on GitHub rate limits so far (pacing and Retry-After sleeps)."""
        return self.api.meter.seconds

    def list_repositories(self, prefix: str) -> list[str]:
        owner, _, under = prefix.strip("/").partition("/")
        if not owner:
            raise UsageError("a GitHub repository pattern needs the owner", "use ghcr.io/OWNER/*")
        names = [f"{owner}/{name}" for name in self.api.packages(owner)]
        base = f"{owner}/{under}" if under else owner
        return sorted(n for n in names if n.startswith(base + "/"))

    def list_images(self, repository: str) -> list[Image]:
        owner, package = split(repository)
        images: list[Image] = []
        found: dict[tuple[str, str], int] = {}
        for version in self.api.versions(owner, package):
            found[(repository, version.digest)] = version.id
            images.append(
                Image(
                    digest=version.digest,
                    tags=version.tags,
                    # updated_at moves when a tag is pushed again: the closest to "pushed".
                    pushed=version.updated or version.created,
                    created=version.created,
                )
            )
        with self._lock:
            self._versions.update(found)
        return images

    def _version_id(self, repository: str, digest: str, *, refresh: bool = False) -> int | None:
        with self._lock:
            known = self._versions.get((repository, digest))
        if known is not None and not refresh:
            return known
        owner, package = split(repository)
        for version in self.api.versions(owner, package):
            if version.digest == digest:
                with self._lock:
                    self._versions[(repository, digest)] = version.id
                return version.id
        return None

    def delete(self, repository: str, digest: str) -> str:
        version = self._version_id(repository, digest)
        if version is None:
            raise NotFoundError(f"no version {digest} in {repository}: already gone", status=404)
        owner, package = split(repository)
        self.api.delete_version(owner, package, version)
        with self._lock:
            self._versions.pop((repository, digest), None)
        return DELETE_METHOD

    def untag(self, repository: str, tag: str, digest: str) -> str:
        current = still_at(self.client, repository, tag, digest)
        config, media_type, body = throwaway_manifest(repository, tag, current.media_type)
        self.client.upload_blob(repository, config)
        pushed = self.client.put_manifest(repository, tag, body, media_type)
        version = self._throwaway_version(repository, tag, pushed)
        owner, package = split(repository)
        self.api.delete_version(owner, package, version)
        now = self.client.head(repository, tag)
        if now is not None:
            raise RegistryError(
                f"tag {repository}:{tag} still exists after its throwaway version was deleted "
                f"(now {now.digest})",
                "it may have been pushed again meanwhile; run cleanup again",
            )
        return UNTAG_METHOD

    def _throwaway_version(self, repository: str, tag: str, pushed: str) -> int:
        """The version GitHub created for the throwaway (it may take a moment to appear)."""
        for delay in (0.0, *self.version_wait):
            time.sleep(delay)
            version = self._version_id(repository, pushed, refresh=True)
            if version is not None:
                return version
        raise RegistryError(
            f"GitHub shows no version for the throwaway manifest {pushed} now on "
            f"{repository}:{tag}",
            "the tag now points at an empty throwaway manifest; run cleanup again to remove it",
        )

    def close(self) -> None:
        self.api.close()
        super().close()


BACKEND = GithubBackend
