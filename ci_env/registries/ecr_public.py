"""AWS ECR Public (`public.ecr.aws/<alias>/<name>`): the ECR backend on the ECR Public API.

The API lives in us-east-1 only. A repository address starts with the registry's alias; the
API wants the account's registry id and the name after the alias, so the alias is looked up
once with DescribeRegistries. ECR Public has no BatchGetImage: manifests for the digest graph
come from the registry side (the Docker Registry API of public.ecr.aws).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ci_env import lazy
from ci_env.errors import AuthError, UsageError
from ci_env.oci import Manifest
from ci_env.options import BackendOptions
from ci_env.registries import _native_http, ecr
from ci_env.registries.base import Backend, Description

if TYPE_CHECKING:
    from ci_env.registries import _aws
else:
    _aws = lazy.module("ci_env.registries._aws")  # boto3 is slow to import

REGION = "us-east-1"  # the only region serving the ECR Public API
PERMISSIONS = (
    "ecr-public:DescribeRegistries, ecr-public:DescribeImages and "
    "ecr-public:BatchDeleteImage on the repository"
)


def login_password() -> tuple[str, str]:
    """(username, password) for public.ecr.aws from ECR Public's GetAuthorizationToken."""
    client = _aws.client("ecr-public", REGION, BackendOptions())
    answer = _aws.call(
        "GetAuthorizationToken for public.ecr.aws",
        "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken",
        client.get_authorization_token,
    )
    return ecr.decode_token(str(answer["authorizationData"]["authorizationToken"]))


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
    host_patterns = (r"public\.ecr\.aws",)
    service = "ecr-public"

    def __init__(self, registry: str, options: BackendOptions) -> None:
        self._aliases: dict[str, str] | None = None
        self._alias_lock = threading.Lock()
        self._registry_side: Backend | None = None
        super().__init__(registry, options)

    def _locate(self) -> tuple[str | None, str]:
        return None, REGION

    def _ids(self, repository: str) -> dict[str, str]:
        alias, _, name = repository.partition("/")
        if not name:
            raise UsageError(
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
        try:
            for page in self._client.get_paginator("describe_registries").paginate():
                for registry in page["registries"]:
                    for alias in registry.get("aliases") or ():
                        aliases[str(alias["name"])] = str(registry["registryId"])
        except Exception as error:
            raise _aws.translate(error, "DescribeRegistries", PERMISSIONS) from None
        return aliases

    def list_repositories(self, prefix: str) -> list[str]:
        with self._alias_lock:
            if self._aliases is None:
                self._aliases = self._load_aliases()
            aliases = dict(self._aliases)
        names: list[str] = []
        for alias, registry_id in aliases.items():
            pages = self._client.get_paginator("describe_repositories")
            try:
                for page in pages.paginate(registryId=registry_id):
                    names.extend(f"{alias}/{r['repositoryName']}" for r in page["repositories"])
            except Exception as error:
                raise _aws.translate(error, "DescribeRepositories", PERMISSIONS) from None
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
