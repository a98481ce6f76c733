"""`nexus` against the real local registry (Docker Registry API) and a probe answer.

Nexus 3 serves Docker repositories on a connector port or, with path-based routing, under the
repository's name as the first path component (`HOST/<nexus-repo>/<image>`): the reference's
repository is passed through whole, so prefixes with several components work unchanged.
"""

from __future__ import annotations

from pathlib import Path

import responses

from ci_env.options import BackendOptions
from ci_env.registries.default import DistributionBackend
from ci_env.registries.detect import probe
from ci_env.registries.nexus import NexusBackend
from tests.registries.distribution_kinds import untag_by_throwaway_then_delete
from tests.support.registry import LocalRegistry

REPO = "docker-hosted/team/app"


def test_path_prefixed_repository_untag_by_throwaway_and_delete(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    # No `DELETE manifests/<tag>` rung on Nexus (it deletes the whole manifest there).
    def listing(backend: DistributionBackend, kept: str, doomed: str) -> None:
        images = {image.digest: image.tags for image in backend.list_images(REPO)}
        assert images == {kept: ("pr-1", "v1"), doomed: ("pr-2",)}

    untag_by_throwaway_then_delete(registry, tmp_path, REPO, NexusBackend, listing)


@responses.activate
def test_probe_reads_the_server_header() -> None:
    responses.get("https://nexus.corp/v2/", status=401, headers={"Server": "Nexus/3.68.1-02 (OSS)"})
    responses.get("https://other.corp/v2/", status=401, headers={"Server": "nginx"})
    nexus = probe("nexus.corp", BackendOptions(max_attempts=1))
    assert nexus is not None
    assert nexus.kind == "nexus"
    assert nexus.reason == "probe: its Server header is 'Nexus/3.68.1-02 (OSS)'"
    other = probe("other.corp", BackendOptions(max_attempts=1))
    assert other is None or other.kind != "nexus"
