"""GitLab container registry: tags through the GitLab REST API (python-gitlab), manifests
through the registry API (Bearer tokens from GitLab's `/jwt/auth`, via the Docker config).

GitLab's single-tag delete (`DELETE .../registry/repositories/:id/tags/:tag`) removes only that
tag, so untag is native and exact. Deleting a digest = deleting every tag on it; the untagged
manifest is then removed by GitLab's own garbage collection, which keeps anything an index
still references. The bulk endpoint (`delete_in_bulk`) is never used: it is asynchronous (no
per-tag result), limited to once an hour per repository, always spares `latest`, and selects
by regex and age on the server — it cannot carry out an exact plan and report each tag.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from ci_env import lazy, secrets, timeparse
from ci_env.errors import AuthError, CiEnvError, NotFoundError, RegistryError, UsageError
from ci_env.options import BackendOptions
from ci_env.registries.base import Description, Image, NativeOption, V2Answer
from ci_env.registries.default import DistributionBackend

if TYPE_CHECKING:
    import gitlab
else:
    gitlab = lazy.module("gitlab")

UNTAG_METHOD = "GitLab API tag delete"
DELETE_METHOD = "GitLab API: every tag of the digest deleted"
TOKEN_HINT = (
    "set CIENV_REPO_GITLAB_TOKEN to a personal, project or group access token with the `api` "
    "scope (Developer role or higher on the project)"
)
JOB_TOKEN_HINT = (
    "CI_JOB_TOKEN can delete registry tags only where the instance allows it; "
    + TOKEN_HINT[0].lower()
    + TOKEN_HINT[1:]
)


@dataclass(frozen=True)
class Target:
    """Where one registry repository lives in the API."""

    project: str  # project id or full path
    repository_id: int
    manager: Any  # python-gitlab ProjectRegistryTagManager


def api_base(registry: str, options: BackendOptions) -> str:
    """The GitLab server URL (python-gitlab adds /api/v4) from CI_API_V4_URL or the host."""
    url = (options.api_urls.get("gitlab") or "").rstrip("/")
    if url:
        return url.removesuffix("/api/v4")
    host = registry.lower().rsplit(":", 1)[0]
    if host == "registry.gitlab.com":
        return "https://gitlab.com"
    if host.startswith("registry."):
        return "https://" + host.removeprefix("registry.")
    raise UsageError(
        f"cannot tell the GitLab API URL for registry {registry}",
        "set CI_API_V4_URL (GitLab CI sets it) or --repo-api-url https://gitlab.example.com",
    )


def candidates(repository: str, project: str) -> list[str]:
    """Projects that may own `repository`: the given one, then its path prefixes, longest first.

    A project is at least `namespace/name`; its images are the project path itself or below.
    """
    parts = repository.split("/")
    found = [project] if project else []
    found += ["/".join(parts[:n]) for n in range(len(parts), 1, -1)]
    return list(dict.fromkeys(found))


class GitlabBackend(DistributionBackend):
    kind: ClassVar[str] = "gitlab"
    description: ClassVar[Description] = Description(
        title="GitLab container registry",
        auth="registry: Docker config (CI_REGISTRY_USER/CI_REGISTRY_PASSWORD from `ci-env "
        "login`), Bearer tokens from GitLab's /jwt/auth; API: --repo-gitlab-token / "
        "CIENV_REPO_GITLAB_TOKEN, else CI_JOB_TOKEN",
        listing="GitLab API registry repositories and tags, per-tag details (digest, created_at)",
        untag="GitLab API single-tag delete (removes only that tag)",
        delete="GitLab API: every tag of the digest deleted; GitLab's garbage collection "
        "removes the untagged manifest unless an index references it",
        cleanup_credentials="a personal, project or group access token with the `api` scope "
        "(Developer or higher); CI_JOB_TOKEN only where the instance lets job tokens delete",
        limitations=(
            "protected container tags cannot be deleted (reported per tag, the run goes on)",
            "untagged manifests are not listed by the API",
            "the bulk-delete endpoint is not used (asynchronous, hourly, always keeps latest)",
        ),
    )
    host_patterns: ClassVar[tuple[str, ...]] = (r"registry\.gitlab\.com",)
    native_options: ClassVar[tuple[NativeOption, ...]] = (
        NativeOption(
            "gitlab-token",
            "GitLab access token (personal, project or group) with the api scope for cleanup",
        ),
        NativeOption(
            "gitlab-job-token",
            "GitLab CI job token, used when no --repo-gitlab-token is set",
            fallbacks=("CI_JOB_TOKEN",),
        ),
        NativeOption(
            "gitlab-project",
            "GitLab project id or path owning the repository (default: derived from its path)",
            secret=False,
            fallbacks=("CI_PROJECT_ID",),
        ),
    )
    list_workers: ClassVar[int] = 8
    lists_natively: ClassVar[bool] = True

    @classmethod
    def recognize(cls, answer: V2Answer) -> str | None:
        if answer.realm.endswith("/jwt/auth"):
            return f"its token realm {answer.realm} is GitLab's"
        return None

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        token = (options.native.get("gitlab-token") or "").strip()
        job_token = (options.native.get("gitlab-job-token") or "").strip()
        secrets.register(token)
        secrets.register(job_token)
        # An access token given explicitly wins; the same value as CI_JOB_TOKEN is a job token.
        self.job = not token or token == job_token
        self._token = job_token if self.job else token
        self.project = (options.native.get("gitlab-project") or "").strip()
        self._base = ""  # resolved on first API use, so `detect` works without CI variables
        self._gl: gitlab.Gitlab | None = None
        self._targets: dict[str, Target] = {}
        self._tags_of: dict[tuple[str, str], tuple[str, ...]] = {}  # from the last listing
        self._lock = threading.Lock()

    @property
    def gl(self) -> gitlab.Gitlab:
        with self._lock:
            if self._gl is None:
                if not self._token:
                    raise AuthError("no GitLab token for the registry API", TOKEN_HINT)
                self._base = api_base(self.registry, self.options)
                credential = {"job_token" if self.job else "private_token": self._token}
                self._gl = gitlab.Gitlab(
                    self._base,
                    **credential,
                    timeout=self.options.timeout,
                    user_agent=self.options.user_agent,
                    per_page=100,
                    retry_transient_errors=True,  # plus python-gitlab's 429 Retry-After handling
                    keep_base_url=True,
                )
            return self._gl

    # --- errors ---------------------------------------------------------------------------

    def _error(self, error: Exception, what: str) -> CiEnvError:
        if isinstance(error, requests.RequestException):
            return RegistryError(
                f"cannot reach GitLab at {self._base} for {what}", "check CI_API_V4_URL"
            )
        assert isinstance(error, gitlab.exceptions.GitlabError)
        status = int(error.response_code or 0)
        message = secrets.redact(str(error.error_message or ""))
        text = f"GitLab answered {status} to {what}: {message}"
        hint = JOB_TOKEN_HINT if self.job else TOKEN_HINT
        if status in (400, 403) and "protect" in message.lower():
            return RegistryError(
                text,
                "a container tag protection rule covers it; a role allowed to delete "
                "protected tags (or a narrower policy) is needed",
                status=status,
                code="PROTECTED",
            )
        if status == 401 or isinstance(error, gitlab.exceptions.GitlabAuthenticationError):
            return AuthError(text, hint)
        if status == 403:
            return AuthError(text, hint)
        if status == 404:
            return NotFoundError(text, status=404)
        return RegistryError(text, status=status)

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (gitlab.exceptions.GitlabError, requests.RequestException) as error:
            raise self._error(error, what) from None

    # --- locating repositories ------------------------------------------------------------

    def _target(self, repository: str) -> Target:
        with self._lock:
            known = self._targets.get(repository)
        if known is not None:
            return known
        for project in candidates(repository, self.project):
            manager = self.gl.projects.get(project, lazy=True).repositories
            try:
                found = self._call(
                    f"listing registry repositories of project {project}",
                    manager.list,
                    get_all=True,
                )
            except NotFoundError:
                continue
            for repo in found:
                if str(repo.path) == repository:
                    target = Target(project, int(repo.id), repo.tags)
                    with self._lock:
                        self._targets[repository] = target
                    return target
        raise NotFoundError(
            f"GitLab has no container repository {self.registry}/{repository}",
            "check the path; set CIENV_REPO_GITLAB_PROJECT when the project is not a prefix",
            status=404,
        )

    def list_repositories(self, prefix: str) -> list[str]:
        under = prefix.strip("/")
        project = self.project or under
        manager = self.gl.projects.get(project, lazy=True).repositories
        found = self._call(f"listing repositories of {project}", manager.list, get_all=True)
        names = sorted(str(repo.path) for repo in found)
        return [n for n in names if not under or n.startswith(under + "/")]

    # --- listing and reading --------------------------------------------------------------

    def list_images(self, repository: str) -> list[Image]:
        try:
            target = self._target(repository)
        except NotFoundError:
            return []  # like the registry API: a repository that does not exist has no tags
        names = self._tag_names(repository, target)
        workers = max(1, min(self.list_workers, len(names)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            details = list(pool.map(lambda name: self._details(repository, name), names))
        tags: dict[str, list[str]] = {}
        created: dict[str, datetime | None] = {}
        for name, detail in zip(names, details, strict=True):
            if detail is None:
                continue  # deleted while we listed
            digest = str(detail.digest)
            tags.setdefault(digest, []).append(name)
            when = timeparse.parse_time(getattr(detail, "created_at", None))
            previous = created.get(digest)
            created[digest] = max(previous, when) if previous and when else previous or when
        with self._lock:
            for digest, names in tags.items():
                self._tags_of[(repository, digest)] = tuple(names)
        return [
            Image(digest=digest, tags=tuple(sorted(names)), created=created[digest])
            for digest, names in sorted(tags.items())
        ]

    def _tag_names(self, repository: str, target: Target) -> list[str]:
        """Keyset pages (GitLab's preferred way; offset pages are deprecated for tags), or
        offset pages where GitLab answers that keyset is not available (405, or 400)."""
        what = f"listing tags of {repository}"
        keyset = {"pagination": "keyset", "order_by": "name", "sort": "asc", "per_page": 100}
        try:
            found = self._call(what, target.manager.list, get_all=True, **keyset)
        except RegistryError as error:
            if error.status not in (400, 405):
                raise
            found = self._call(what, target.manager.list, get_all=True, per_page=100)
        return [str(tag.name) for tag in found]

    def _details(self, repository: str, tag: str) -> Any:
        target = self._target(repository)
        try:
            return self._call(f"reading tag {repository}:{tag}", target.manager.get, tag)
        except NotFoundError:
            return None

    def resolve(self, repository: str, tag: str) -> str | None:
        try:
            detail = self._details(repository, tag)
        except NotFoundError:
            return None
        return str(detail.digest) if detail is not None else None

    # --- deleting -------------------------------------------------------------------------

    def untag(self, repository: str, tag: str, digest: str) -> str:
        self.check_still_at(repository, tag, digest)
        target = self._target(repository)
        self._call(f"deleting tag {repository}:{tag}", target.manager.delete, tag)
        return UNTAG_METHOD

    def delete(self, repository: str, digest: str) -> str:
        """Delete every tag on `digest`, each re-checked first (a tag that moved is kept)."""
        with self._lock:
            tags = self._tags_of.get((repository, digest))
        if tags is None:  # not listed in this run (e.g. a saved plan): list now
            self.list_images(repository)
            with self._lock:
                tags = self._tags_of.get((repository, digest), ())
        target = self._target(repository)
        removed = 0
        for tag in tags:
            if self.resolve(repository, tag) != digest:
                continue  # gone already, or pushed again since: not ours to delete
            try:
                self._call(f"deleting tag {repository}:{tag}", target.manager.delete, tag)
                removed += 1
            except NotFoundError:
                continue
        if not removed:
            raise NotFoundError(f"no tag of {repository} points at {digest} any more", status=404)
        return DELETE_METHOD


BACKEND = GitlabBackend
