"""AWS ECR (private registries): listing and deletion through the ECR API with boto3.

The account id and region come from the host (`<account>.dkr.ecr.<region>.amazonaws.com`,
also the `-fips`, `dkr-ecr` dual-stack, `.com.cn`, `.amazonaws.eu` and `.on.aws` forms).
ECR deletes by tag as a true untag (the image goes only with its last tag) and by digest as a
delete of the image with every tag, 100 ids a call; manifests for the digest graph come from
BatchGetImage, so cleanup never needs a registry login here.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ci_env import lazy, secrets
from ci_env.errors import AuthError, NotFoundError, RegistryError, UsageError
from ci_env.oci import MANIFEST_ACCEPT, Manifest, parse_manifest
from ci_env.options import BackendOptions
from ci_env.registries.base import Backend, Description, Image, Operation, OpKind, OpResult

if TYPE_CHECKING:
    from ci_env.registries import _aws
else:
    _aws = lazy.module("ci_env.registries._aws")  # boto3 is slow to import

_HOST = re.compile(
    r"(?P<account>\d{12})\.dkr[.-]ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|on\.aws)",
    re.IGNORECASE,
)
PERMISSIONS = (
    "ecr:DescribeImages, ecr:BatchGetImage and ecr:BatchDeleteImage on the repository "
    "(ecr:DescribeRepositories for REPO/*)"
)
_METHOD = "ECR BatchDeleteImage"


def parse_host(registry: str) -> tuple[str, str]:
    """(account id, region) of an ECR registry host; UsageError for any other host."""
    match = _HOST.fullmatch(registry.lower().rsplit(":", 1)[0])
    if match is None:
        raise UsageError(
            f"{registry!r} is not an AWS ECR registry host",
            "use the form <account>.dkr.ecr.<region>.amazonaws.com, or another "
            "--repo-container-registry",
        )
    return match["account"], match["region"]


def ecr_login_password(registry: str) -> tuple[str, str]:
    """(username, password) for `docker login` to an ECR host, from GetAuthorizationToken.

    The token is valid for 12 hours; it is registered as a secret before anything can print it.
    """
    if registry.lower().rsplit(":", 1)[0] == "public.ecr.aws":
        from ci_env.registries import ecr_public

        return ecr_public.login_password()
    account, region = parse_host(registry)
    client = _aws.client("ecr", region, BackendOptions())
    answer = _aws.call(
        f"GetAuthorizationToken for {registry}",
        "ecr:GetAuthorizationToken",
        client.get_authorization_token,
        registryIds=[account],
    )
    return decode_token(str(answer["authorizationData"][0]["authorizationToken"]))


def decode_token(token: str) -> tuple[str, str]:
    """ECR tokens are base64 of `AWS:<password>`."""
    secrets.register(token)
    try:
        username, _, password = base64.b64decode(token).decode().partition(":")
    except ValueError:
        raise AuthError("AWS returned an authorization token that is not base64") from None
    secrets.register(password)
    return username, password


class EcrBackend(Backend):
    kind = "ecr"
    description = Description(
        title="AWS ECR",
        auth="AWS credentials (standard chain); `ci-env login` gets a 12-hour registry "
        "password from GetAuthorizationToken",
        listing="ECR DescribeImages (paginated; push time, tags, digest, media type)",
        untag="ECR BatchDeleteImage by tag (removes only that tag)",
        delete="ECR BatchDeleteImage by digest, 100 ids a call",
        cleanup_credentials="AWS credentials allowed " + PERMISSIONS,
        limitations=(
            "ECR refuses to delete an image an index still references "
            "(ImageReferencedByManifestList); it is reported and left for the next run",
        ),
    )
    host_patterns = (
        r"\d{12}\.dkr[.-]ecr(-fips)?\.[a-z0-9-]+\.(amazonaws\.com(\.cn)?|amazonaws\.eu|on\.aws)",
    )
    lists_untagged = True
    batch_size = 100  # BatchDeleteImage takes at most 100 image ids per call (API reference)
    service = "ecr"

    def __init__(self, registry: str, options: BackendOptions) -> None:
        super().__init__(registry, options)
        self.registry_id, self.region = self._locate()
        self._client: Any = _aws.client(self.service, self.region, options)
        self._media: dict[tuple[str, str], str] = {}  # (repository, digest) -> media type
        self._lock = threading.Lock()

    def _locate(self) -> tuple[str | None, str]:
        return parse_host(self.registry)

    def _ids(self, repository: str) -> dict[str, str]:
        """The registry and repository parameters every ECR call takes."""
        ids = {"repositoryName": repository}
        if self.registry_id:
            ids["registryId"] = self.registry_id
        return ids

    def _call(self, what: str, operation: str, **kwargs: Any) -> Any:
        return _aws.call(what, PERMISSIONS, getattr(self._client, operation), **kwargs)

    def list_repositories(self, prefix: str) -> list[str]:
        params = {"registryId": self.registry_id} if self.registry_id else {}
        names: list[str] = []
        try:
            for page in self._client.get_paginator("describe_repositories").paginate(**params):
                names.extend(str(repo["repositoryName"]) for repo in page["repositories"])
        except Exception as error:
            raise _aws.translate(error, "DescribeRepositories", PERMISSIONS) from None
        under = prefix.strip("/")
        return sorted(n for n in names if not under or n.startswith(under + "/"))

    def list_images(self, repository: str) -> list[Image]:
        images: list[Image] = []
        paginator = self._client.get_paginator("describe_images")
        try:
            for page in paginator.paginate(
                **self._ids(repository), PaginationConfig={"PageSize": 1000}
            ):
                images.extend(self._image(repository, detail) for detail in page["imageDetails"])
        except Exception as error:
            raise _aws.translate(error, f"DescribeImages of {repository}", PERMISSIONS) from None
        return images

    def _image(self, repository: str, detail: dict[str, Any]) -> Image:
        digest = str(detail["imageDigest"])
        media = str(detail.get("imageManifestMediaType") or "")
        with self._lock:
            self._media[(repository, digest)] = media
        pushed = detail.get("imagePushedAt")
        return Image(
            digest=digest,
            tags=tuple(sorted(detail.get("imageTags") or ())),
            pushed=pushed if isinstance(pushed, datetime) else None,
            media_type=media,
        )

    def manifest(self, repository: str, digest: str) -> Manifest:
        answer = self._call(
            f"BatchGetImage {digest} of {repository}",
            "batch_get_image",
            **self._ids(repository),
            imageIds=[{"imageDigest": digest}],
            acceptedMediaTypes=list(MANIFEST_ACCEPT),
        )
        for image in answer.get("images") or ():
            media = str(image.get("imageManifestMediaType") or "")
            return parse_manifest(str(image["imageManifest"]), digest, media)
        failure = (answer.get("failures") or [{}])[0]
        code = str(failure.get("failureCode") or "")
        if code in ("ImageNotFound", ""):
            raise NotFoundError(f"manifest {digest} of {repository}: not found", status=404)
        raise RegistryError(
            f"ECR could not read {digest} of {repository}: {code}: "
            f"{failure.get('failureReason', '')}",
            code=code,
        )

    def resolve(self, repository: str, tag: str) -> str | None:
        try:
            answer = self._call(
                f"DescribeImages {tag} of {repository}",
                "describe_images",
                **self._ids(repository),
                imageIds=[{"imageTag": tag}],
            )
        except NotFoundError:
            return None
        details = answer.get("imageDetails") or ()
        return str(details[0]["imageDigest"]) if details else None

    def untag(self, repository: str, tag: str, digest: str) -> str:
        return self._single(repository, Operation(OpKind.UNTAG, digest, tag))

    def delete(self, repository: str, digest: str) -> str:
        return self._single(repository, Operation(OpKind.DELETE, digest))

    def _single(self, repository: str, op: Operation) -> str:
        (result,) = self._batch(repository, [op])
        if result.already_gone:
            raise NotFoundError(f"{op.tag or op.digest} of {repository}: already gone", status=404)
        if result.error is not None:
            raise result.error
        return result.method

    def apply(self, repository: str, ops: Sequence[Operation]) -> Iterator[OpResult]:
        """Batched: 100 ids a call, runs of one kind in the planned order, indexes first."""
        with self._lock:
            media = dict(self._media)
        for wave in _aws.waves(ops, lambda digest: media.get((repository, digest), "")):
            for chunk in _aws.chunks(wave, self.batch_size):
                yield from self._batch(repository, chunk)

    def _batch(self, repository: str, ops: Sequence[Operation]) -> list[OpResult]:
        try:
            answer = self._call(
                f"BatchDeleteImage in {repository}",
                "batch_delete_image",
                **self._ids(repository),
                imageIds=[_aws.image_id(op) for op in ops],
            )
        except NotFoundError:
            # The repository itself is gone: so is everything we meant to remove from it.
            return [OpResult(op, already_gone=True, method=_METHOD) for op in ops]
        except (RegistryError, UsageError) as error:
            return [OpResult(op, error=error, method=_METHOD) for op in ops]
        return _aws.results(ops, answer, repository, _METHOD)


BACKEND = EcrBackend
