"""The shared check for kinds that speak the plain Docker Registry API (Nexus, Yandex, ...)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ci_env.options import BackendOptions
from ci_env.registries.default import DistributionBackend
from tests.support.images import list_tags, manifest_exists, push_image, tag
from tests.support.registry import LocalRegistry


def untag_by_throwaway_then_delete(
    registry: LocalRegistry,
    tmp_path: Path,
    repo: str,
    kind: type[DistributionBackend],
    check_listing: Callable[[DistributionBackend, str, str], None] = lambda *_: None,
) -> None:
    """`v1` and `pr-1` share a digest, `pr-2` has its own: `pr-1` is untagged through the
    throwaway rung (distribution refuses tag deletes), `pr-2` deleted by digest, `v1` stays."""
    kept = push_image(registry, repo, "v1", via="http")
    tag(registry, repo, "v1", "pr-1")
    doomed = push_image(registry, repo, "pr-2", seed="other", via="http")
    options = BackendOptions(docker_config=str(registry.write_docker_config(tmp_path)))
    backend = kind(registry.host, options)
    try:
        check_listing(backend, kept, doomed)
        assert backend.untag(repo, "pr-1", kept) == "throwaway manifest"
        assert backend.delete(repo, doomed) == "DELETE /v2 manifest by digest"
    finally:
        backend.close()
    assert list_tags(registry, repo) == ["v1"]
    assert manifest_exists(registry, repo, kept)
    assert not manifest_exists(registry, repo, doomed)
