"""`gar`: Google Artifact Registry (`<location>-docker.pkg.dev`).

The Docker Registry API of Artifact Registry behaves like GCR's for cleanup: `DELETE
manifests/<tag>` untags and a still-tagged digest answers GOOGLE_MANIFEST_DANGLING_TAG. Where
`tags/list` carries no `manifest` map the listing resolves tag by tag (the inherited path).
"""

from __future__ import annotations

from typing import ClassVar

from ci_env.registries.base import Description
from ci_env.registries.gcr import GcrBackend


class GarBackend(GcrBackend):
    kind: ClassVar[str] = "gar"
    description: ClassVar[Description] = Description(
        title="Google Artifact Registry",
        auth="Docker config credentials (oauth2accesstoken, _json_key, _json_key_base64)",
        listing="GET /v2/<name>/tags/list (with the `manifest` map where served)",
        untag="DELETE /v2/<name>/manifests/<tag> (a pure untag)",
        delete="DELETE /v2/<name>/manifests/<digest>, tags on it removed first",
        cleanup_credentials="roles/artifactregistry.repoAdmin on the repository (reader to list)",
        limitations=("Artifact Registry's own cleanup policies may delete images independently",),
    )
    host_patterns: ClassVar[tuple[str, ...]] = (r"[a-z0-9-]+-docker\.pkg\.dev",)


BACKEND = GarBackend
