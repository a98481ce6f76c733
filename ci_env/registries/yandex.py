"""`yandex`: Yandex Container Registry (cr.yandex/<registry-id>/...).

Plain Docker Registry API, including digest deletes; login users `oauth`, `iam` or
`json_key`. Everything is inherited from the default backend; this module declares the host.
"""

from __future__ import annotations

from typing import ClassVar

from ci_env.registries.base import Description
from ci_env.registries.default import DistributionBackend


class YandexBackend(DistributionBackend):
    kind: ClassVar[str] = "yandex"
    description: ClassVar[Description] = Description(
        title="Yandex Container Registry",
        auth="Docker config credentials: user oauth, iam or json_key",
        listing="GET /v2/<name>/tags/list, each tag resolved with one manifest GET",
        untag="DELETE /v2/<name>/manifests/<tag>, else a throwaway manifest deleted by digest",
        delete="DELETE /v2/<name>/manifests/<digest>",
        cleanup_credentials="the container-registry.images.pusher role or higher on the registry",
        limitations=("repositories live under the registry id: cr.yandex/<registry-id>/<name>",),
    )
    host_patterns: ClassVar[tuple[str, ...]] = (r"cr\.yandex", r"cr\.yandexcloud\.kz")


BACKEND = YandexBackend
