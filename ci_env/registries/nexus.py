"""`nexus`: Sonatype Nexus Repository 3 hosting Docker repositories.

Served on a connector port or under `/repository/<repo>/`; Docker Registry API with Basic auth.
Nexus has no pure tag delete: `DELETE manifests/<tag>` resolves the tag and deletes the
manifest (every tag on it) [unverified], so the ladder skips that rung and untags with a
throwaway manifest. Detected with `--probe` from its `Server: Nexus/...` header.
"""

from __future__ import annotations

from typing import ClassVar

from ci_env.registries.base import Description, V2Answer
from ci_env.registries.default import DistributionBackend


class NexusBackend(DistributionBackend):
    kind: ClassVar[str] = "nexus"
    description: ClassVar[Description] = Description(
        title="Sonatype Nexus Repository",
        auth="Docker config credentials (Basic; enable the Docker Bearer Token Realm for tokens)",
        listing="GET /v2/<name>/tags/list, each tag resolved with HEAD",
        untag="a throwaway manifest pushed to the tag and deleted by digest",
        delete="DELETE /v2/<name>/manifests/<digest>",
        cleanup_credentials="nx-repository-view-docker-<repo>-delete and -edit privileges",
        limitations=(
            "deleting manifests frees no space until the Docker cleanup and compact tasks run",
            "bundles (OCI artifacts) not tested",
        ),
        oci_artifacts="not tested",
    )
    try_delete_tag: ClassVar[bool] = False

    @classmethod
    def recognize(cls, answer: V2Answer) -> str | None:
        server = answer.headers.get("Server", "")
        return f"its Server header is {server!r}" if "nexus" in server.lower() else None


BACKEND = NexusBackend
