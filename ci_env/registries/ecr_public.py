"""AWS ECR Public (`public.ecr.aws/<alias>/<name>`): the ECR backend on the ECR Public API.

The API lives in us-east-1 only. A repository address starts with the registry's alias; the
API wants the account's registry id and the name after the alias, so the alias is looked up
once with DescribeRegistries. ECR Public has no BatchGetImage: manifests for the digest graph
come from the registry side (the Docker Registry API of public.ecr.aws).
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from ci_env import lazy, reference
from ci_env.errors import AuthError
from ci_env.oci import Manifest
from ci_env.options import BackendOptions
from ci_env.registries import _native_http, ecr
from ci_env.registries.base import Backend, Description, split_repository

if TYPE_CHECKING:
    from ci_env.registries import _aws
else:
    _aws = lazy.module("ci_env.registries._aws")  # boto3 is slow to import

PERMISSIONS = (
    "ecr-public:DescribeRegistries, ecr-public:DescribeImages and "
    "ecr-public:BatchDeleteImage on the repository"
)


class EcrPublicBackend(ecr.EcrBackend):
    kind = "ecr-public"
    description = Description(
        title="AWS ECR Public",
        auth="AWS credentials (standard chain); `ci-env login` uses ECR Public's "
        "GetAuthorizationToken (us-east-1)",
        listing="ECR Public DescribeImages (paginated; push time, tags, digest)",
        untag="ECR Public BatchDeleteImage by tag (removes only that tag)",
        delete="ECR Public BatchDeleteImage by digest, 100 ids a call",
        cleanup_credentials="AWS credentials allowed " + PERMISSIONS,
        limitations=("manifests are read through the public registry API (no BatchGetImage)",),
    )
    host_patterns = (re.escape(reference.ECR_PUBLIC),)
    service = "ecr-public"
    permissions = PERMISSIONS

    def __init__(self, registry: str, options: BackendOptions) -> None:
        self._aliases: dict[str, str] | None = None
        self._alias_lock = threading.Lock()
        self._registry_side: Backend | None = None
        super().__init__(registry, options)

    def _locate(self) -> tuple[str | None, str]:
        return None, _aws.ECR_PUBLIC_REGION

    def _ids(self, repository: str) -> dict[str, str]:
        alias, name = split_repository(
            repository,
            f"{repository!r} lacks the registry alias",
            "ECR Public repositories are public.ecr.aws/<alias>/<name>",
        )
        return {"registryId": self._registry_of(alias), "repositoryName": name}

    def _registry_of(self, alias: str) -> str:
        with self._alias_lock:
            if self._aliases is None:
                self._aliases = self._load_aliases()
            found = self._aliases.get(alias)
        if found is None:
            raise AuthError(
                f"the ECR Public alias {alias!r} is not a registry of these AWS credentials",
                "use credentials of the AWS account that owns the alias",
            )
        return found

    def _load_aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for page in self._pages("DescribeRegistries", "describe_registries"):
            for registry in page["registries"]:
                for alias in registry.get("aliases") or ():
                    aliases[str(alias["name"])] = str(registry["registryId"])
        return aliases

    def list_repositories(self, prefix: str) -> list[str]:
        with self._alias_lock:
            if self._aliases is None:
                self._aliases = self._load_aliases()
            aliases = dict(self._aliases)
        names: list[str] = []
        for alias, registry_id in aliases.items():
            pages = self._pages(
                "DescribeRepositories", "describe_repositories", registryId=registry_id
            )
            for page in pages:
                names.extend(f"{alias}/{r['repositoryName']}" for r in page["repositories"])
        under = prefix.strip("/")
        return sorted(n for n in names if not under or n.startswith(under + "/"))

    @property
    def registry_side(self) -> Backend:
        with self._alias_lock:
            if self._registry_side is None:
                self._registry_side = _native_http.distribution(self.registry, self.options)
            return self._registry_side

    def manifest(self, repository: str, digest: str) -> Manifest:
        return self.registry_side.manifest(repository, digest)

    def referrers(self, repository: str, digest: str) -> list[str]:
        return self.registry_side.referrers(repository, digest)

    def close(self) -> None:
        if self._registry_side is not None:
            self._registry_side.close()


BACKEND = EcrPublicBackend
