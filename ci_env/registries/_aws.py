"""What the ECR and ECR Public backends share: boto3 clients, error translation, batching.

boto3 does the AWS work: the standard credential chain (environment, profiles, SSO, web
identity / role assumption), `AWS_REGION`, and `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL`
(read by botocore itself, so tests point it at `moto_server`). Retries are botocore's
"adaptive" mode: it backs off on throttling and slows the client down for the next calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from ci_env import secrets
from ci_env.errors import AuthError, CiEnvError, NotFoundError, RegistryError, UsageError
from ci_env.oci import INDEX_MEDIA_TYPES
from ci_env.options import BackendOptions
from ci_env.registries.base import Operation, OpKind, OpResult

logger = logging.getLogger(__name__)

_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnauthorizedOperation",
    }
)
_NOT_FOUND_CODES = frozenset(
    {"RepositoryNotFoundException", "ImageNotFoundException", "RegistryNotFoundException"}
)


def client(service: str, region: str, options: BackendOptions) -> Any:
    """A boto3 client with our timeouts, attempts and user agent; credentials from boto3."""
    config = Config(
        region_name=region,
        connect_timeout=options.timeout,
        read_timeout=options.timeout,
        retries={"mode": "adaptive", "max_attempts": max(1, options.max_attempts)},
        user_agent_extra=options.user_agent,
    )
    try:
        return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
    except BotoCoreError as error:
        raise UsageError(f"cannot set up the AWS {service} client: {error}") from None


def translate(error: Exception, what: str, permissions: str) -> CiEnvError:
    """A botocore/boto3 exception as a `ci_env.errors` type with what to do about it."""
    hint = (
        f"the AWS identity needs {permissions}; credentials come from the standard AWS chain "
        "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web-identity role, "
        "or the instance/task role)"
    )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return AuthError(f"no usable AWS credentials for {what}", hint)
    if isinstance(error, ParamValidationError):
        return UsageError(f"AWS rejected the parameters of {what}: {error}")
    if isinstance(error, EndpointConnectionError):
        return RegistryError(f"cannot reach AWS for {what}: {error}", "check the network")
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        message = secrets.redact(str(info.get("Message", "")))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"AWS refused {what}: {code}: {message}"
        if code in _AUTH_CODES:
            return AuthError(text, hint)
        if code in _NOT_FOUND_CODES:
            return NotFoundError(f"{what}: {code}: {message}", status=status or 404, code=code)
        if code == "InvalidParameterException":
            return UsageError(text)
        return RegistryError(text, status=status, code=code)
    if isinstance(error, BotoCoreError):
        return RegistryError(f"AWS call {what} failed: {error}")
    raise error  # not an AWS error: a bug, let it show


def call(what: str, permissions: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one boto3 call, translating its errors."""
    try:
        return function(**kwargs)
    except (BotoCoreError, ClientError) as error:
        raise translate(error, what, permissions) from None


def image_id(op: Operation) -> dict[str, str]:
    """By tag to untag (the image stays while other tags remain), by digest to delete."""
    if op.kind is OpKind.UNTAG:
        assert op.tag is not None
        return {"imageTag": op.tag}
    return {"imageDigest": op.digest}


def chunks(ops: Sequence[Operation], size: int) -> Iterator[Sequence[Operation]]:
    for start in range(0, len(ops), size):
        yield ops[start : start + size]


def waves(ops: Sequence[Operation], media: Callable[[str], str]) -> list[list[Operation]]:
    """Consecutive runs of one kind, each delete run split into indexes first, then the rest.

    ECR refuses to delete an image an index still references (ImageReferencedByManifestList);
    deleting an index and its children in one call could hit that, in two calls it cannot.
    Runs keep the order the cleanup planned (untags before deletes, indexes before children).
    """
    runs: list[list[Operation]] = []
    for op in ops:
        if runs and runs[-1][0].kind is op.kind:
            runs[-1].append(op)
        else:
            runs.append([op])
    result: list[list[Operation]] = []
    for run in runs:
        if run[0].kind is OpKind.DELETE:
            indexes = [op for op in run if media(op.digest) in INDEX_MEDIA_TYPES]
            others = [op for op in run if media(op.digest) not in INDEX_MEDIA_TYPES]
            result.extend(wave for wave in (indexes, others) if wave)
        else:
            result.append(run)
    return result


def results(
    ops: Sequence[Operation], response: dict[str, Any], repository: str, method: str
) -> list[OpResult]:
    """Match a BatchDeleteImage response's `failures[]` back to the operations sent."""
    by_tag: dict[str, dict[str, Any]] = {}
    by_digest: dict[str, dict[str, Any]] = {}
    for failure in response.get("failures") or ():
        ident = failure.get("imageId") or {}
        if ident.get("imageTag"):
            by_tag[str(ident["imageTag"])] = failure
        elif ident.get("imageDigest"):
            by_digest[str(ident["imageDigest"])] = failure
    out: list[OpResult] = []
    for op in ops:
        failure = by_tag.get(op.tag or "") if op.kind is OpKind.UNTAG else by_digest.get(op.digest)
        if failure is None:
            out.append(OpResult(op, method=method))
        elif failure.get("failureCode") == "ImageNotFound":
            out.append(OpResult(op, already_gone=True, method=method))
        else:
            out.append(OpResult(op, error=failure_error(op, failure, repository), method=method))
    return out


def failure_error(op: Operation, failure: dict[str, Any], repository: str) -> RegistryError:
    code = str(failure.get("failureCode") or "")
    reason = str(failure.get("failureReason") or "")
    what = f"{op.tag} ({op.digest})" if op.tag else op.digest
    if code == "ImageReferencedByManifestList":
        # Not retried: it stays referenced until its index goes; the next run takes it.
        return RegistryError(
            f"{what} in {repository} is still referenced by an image index: {reason}",
            "ECR keeps children of an index; it goes once no index references it "
            "(run cleanup again after the index is deleted)",
            code=code,
        )
    return RegistryError(
        f"ECR could not remove {what} in {repository}: {code}: {reason}", code=code
    )
