"""Images in use, pure: references normalised and grouped by repository, each with who uses it.

A reference is normalised with the Docker grammar (`nginx` = `docker.io/library/nginx`,
`index.docker.io/...` = `docker.io/...`, `x:tag@sha256:...`), so it matches a repository however
it was spelled. It protects its tag and, when it names one, its digest (a digest is what really
runs: a tag may have moved since). Kubernetes status fields prefix image IDs with a runtime
scheme (`docker-pullable://`); a bare `sha256:...` image ID is a local config digest and
names no repository, so it is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ci_env.errors import UsageError
from ci_env.reference import Reference, match_host, parse

_SCHEMES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")


def normalise(text: str) -> Reference | None:
    """The reference an image field names, or None when it names no registry image."""
    raw = text.strip()
    for scheme in _SCHEMES:
        raw = raw.removeprefix(scheme)
    if not raw or raw.startswith("sha256:"):
        return None
    try:
        return parse(raw)
    except UsageError:
        return None


@dataclass(frozen=True)
class RepoUse:
    """What is in use in one repository: tag -> who, digest -> who."""

    tags: Mapping[str, str] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tags or self.digests)


@dataclass(frozen=True)
class InUse:
    """Every image in use, by `registry/repository`."""

    repositories: Mapping[str, RepoUse] = field(default_factory=dict)
    sources: tuple[str, ...] = ()  # what was scanned, for the log ("kube context a", "list.txt")

    def of(self, registry: str, repository: str) -> RepoUse:
        return self.repositories.get(f"{match_host(registry)}/{repository}", RepoUse())


def _who(users: list[str]) -> str:
    first = sorted(users)[0]
    more = len(set(users)) - 1
    return f"in use by {first}" + (f" and {more} more" if more else "")


@dataclass
class Collector:
    """Gathers references from the sources; `result()` freezes them."""

    tags: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    digests: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def add(self, ref: Reference, who: str) -> None:
        name = ref.match_name
        if ref.tag:
            self.tags.setdefault(name, {}).setdefault(ref.tag, []).append(who)
        if ref.digest:
            self.digests.setdefault(name, {}).setdefault(ref.digest, []).append(who)
        if not ref.tag and not ref.digest:  # a bare name pulls `latest`
            self.tags.setdefault(name, {}).setdefault("latest", []).append(who)

    def result(self) -> InUse:
        names = sorted(set(self.tags) | set(self.digests))
        repositories = {
            name: RepoUse(
                {tag: _who(users) for tag, users in self.tags.get(name, {}).items()},
                {digest: _who(users) for digest, users in self.digests.get(name, {}).items()},
            )
            for name in names
        }
        return InUse(repositories, tuple(self.sources))
