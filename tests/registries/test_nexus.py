"""`nexus` against the real local registry (Docker Registry API) and a probe answer.

Nexus 3 serves Docker repositories on a connector port or, with path-based routing, under the
repository's name as the first path component (`HOST/<nexus-repo>/<image>`): the reference's
repository is passed through whole, so prefixes with several components work unchanged.
"""

from __future__ import annotations

from pathlib import Path

import responses

from ci_env.registries.base import BackendOptions
from ci_env.registries.nexus import NexusBackend
from tests.support.images import list_tags, manifest_exists, push_image, tag
from tests.support.registry import LocalRegistry

REPO = "docker-hosted/team/app"


def test_path_prefixed_repository_untag_by_throwaway_and_delete(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    kept = push_image(registry, REPO, "v1", via="http")
    tag(registry, REPO, "v1", "pr-1")
    doomed = push_image(registry, REPO, "pr-2", seed="other", via="http")
    options = BackendOptions(docker_config=str(registry.write_docker_config(tmp_path)))
    backend = NexusBackend(registry.host, options)
    try:
        images = {image.digest: image.tags for image in backend.list_images(REPO)}
        assert images == {kept: ("pr-1", "v1"), doomed: ("pr-2",)}
        # No `DELETE manifests/<tag>` rung on Nexus (it deletes the whole manifest there).
        assert backend.untag(REPO, "pr-1", kept) == "throwaway manifest"
        assert backend.delete(REPO, doomed) == "DELETE /v2 manifest by digest"
    finally:
        backend.close()
    assert list_tags(registry, REPO) == ["v1"]
    assert manifest_exists(registry, REPO, kept) and not manifest_exists(registry, REPO, doomed)


@responses.activate
def test_probe_reads_the_server_header() -> None:
    responses.get("https://nexus.corp/v2/", status=401, headers={"Server": "Nexus/3.68.1-02 (OSS)"})
    responses.get("https://other.corp/v2/", status=401, headers={"Server": "nginx"})
    assert NexusBackend.probe("nexus.corp", BackendOptions(max_attempts=1))
    assert not NexusBackend.probe("other.corp", BackendOptions(max_attempts=1))
