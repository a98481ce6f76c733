"""The ECR backends against moto (in-process and `moto_server` on loopback) and botocore's Stubber.

moto implements DescribeImages, BatchGetImage and BatchDeleteImage as ECR documents them:
deleting by tag removes that tag only (the image goes with its last tag), deleting by digest
removes the image with all its tags, and missing images come back in `failures[]`. What moto
does not model (nextToken pages, ImageReferencedByManifestList, AccessDenied, ECR Public) is
driven through botocore's Stubber with response shapes from the ECR API reference.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ci_env import secrets
from ci_env.errors import AuthError, NotFoundError, UsageError
from ci_env.oci import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from ci_env.options import BackendOptions
from ci_env.registries import ecr, ecr_public
from ci_env.registries.base import Operation, OpKind, first_pattern_match
from tests.support import motoserver
from tests.support.ports import free_port

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
OPTIONS = BackendOptions(max_attempts=2, timeout=10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials only; no profile, metadata service or real endpoint can be reached."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))


@pytest.fixture
def moto(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ecr", region_name="us-east-1")
        client.create_repository(repositoryName="app")
        yield client


def image_manifest(seed: str) -> str:
    layer = hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + hashlib.sha256(b"cfg" + seed.encode()).hexdigest(),
                       "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": f"sha256:{layer}", "size": 1}],
        }
    )  # fmt: skip


def put(client: Any, repo: str, tags: list[str], body: str, media: str = OCI_MANIFEST) -> str:
    """Push `body` under each tag; ECR's digest is the sha256 of the manifest bytes."""
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    for tag in tags:
        client.put_image(repositoryName=repo, imageManifest=body, imageTag=tag,
                         imageManifestMediaType=media, imageDigest=digest)  # fmt: skip
    return digest


def tags_of(client: Any, repo: str = "app") -> dict[str, list[str]]:
    details = client.describe_images(repositoryName=repo)["imageDetails"]
    return {d["imageDigest"]: sorted(d.get("imageTags", [])) for d in details}


def count_calls(backend: ecr.EcrBackend, operation: str) -> list[int]:
    calls: list[int] = []
    backend._client.meta.events.register(f"before-call.*.{operation}", lambda **_: calls.append(1))
    return calls


# --- host parsing and detection -------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (HOST, (ACCOUNT, "us-east-1")),
        (f"{ACCOUNT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com", (ACCOUNT, "us-gov-west-1")),
        (f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", (ACCOUNT, "cn-north-1")),
        (f"{ACCOUNT}.dkr-ecr.eu-west-1.on.aws", (ACCOUNT, "eu-west-1")),
        (f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu", (ACCOUNT, "eusc-de-east-1")),
        (f"{ACCOUNT}.DKR.ECR.US-EAST-1.AMAZONAWS.COM:443", (ACCOUNT, "us-east-1")),
    ],
)
def test_account_and_region_come_from_the_host(host: str, expected: tuple[str, str]) -> None:
    assert ecr.parse_host(host) == expected
    assert first_pattern_match(ecr.BACKEND.host_patterns, host)


@pytest.mark.parametrize("host", ["ghcr.io", "12345.dkr.ecr.us-east-1.amazonaws.com", "ecr.aws"])
def test_other_hosts_are_not_ecr(host: str) -> None:
    assert not first_pattern_match(ecr.BACKEND.host_patterns, host)
    with pytest.raises(UsageError, match="not an AWS ECR registry host"):
        ecr.parse_host(host)


def test_ecr_public_host() -> None:
    assert first_pattern_match(ecr_public.BACKEND.host_patterns, "public.ecr.aws")
    assert not first_pattern_match(ecr.BACKEND.host_patterns, "public.ecr.aws")


# --- listing, manifests, resolve ------------------------------------------------------------


def test_lists_multi_tag_images_with_push_time_and_media_type(moto: Any) -> None:
    shared = put(moto, "app", ["1.0", "latest", "stable"], image_manifest("a"))
    single = put(moto, "app", ["0.9"], image_manifest("b"), DOCKER_MANIFEST)
    images = {i.digest: i for i in ecr.BACKEND(HOST, OPTIONS).list_images("app")}
    assert images[shared].tags == ("1.0", "latest", "stable")
    assert images[single].tags == ("0.9",)
    assert images[single].media_type == DOCKER_MANIFEST
    pushed = images[shared].pushed
    assert pushed is not None
    assert pushed.tzinfo is not None
    assert abs((datetime.now(UTC) - pushed).total_seconds()) < 600


def test_listing_past_1000_images(moto: Any) -> None:
    for n in range(1001):
        put(moto, "app", [f"t{n}"], image_manifest(str(n)))
    images = ecr.BACKEND(HOST, OPTIONS).list_images("app")
    assert len(images) == 1001
    assert {t for i in images for t in i.tags} >= {"t0", "t1000"}


def test_listing_follows_next_token(aws_env: None) -> None:
    """DescribeImages returns at most 1000 images a page plus `nextToken` (API reference)."""
    backend = ecr.BACKEND(HOST, OPTIONS)
    detail = [{"imageDigest": "sha256:" + f"{n:064x}", "imageTags": [f"t{n}"],
               "imagePushedAt": datetime(2024, 1, 1, tzinfo=UTC)} for n in range(2500)]  # fmt: skip
    with Stubber(backend._client) as stub:
        base = {"registryId": ACCOUNT, "repositoryName": "app", "maxResults": 1000}
        stub.add_response("describe_images", {"imageDetails": detail[:1000], "nextToken": "p2"},
                          base)  # fmt: skip
        stub.add_response("describe_images", {"imageDetails": detail[1000:2000],
                          "nextToken": "p3"}, {**base, "nextToken": "p2"})  # fmt: skip
        stub.add_response("describe_images", {"imageDetails": detail[2000:]},
                          {**base, "nextToken": "p3"})  # fmt: skip
        images = backend.list_images("app")
        stub.assert_no_pending_responses()
    assert len(images) == 2500
    assert images[-1].tags == ("t2499",)


def test_missing_repository_is_not_found(moto: Any) -> None:
    with pytest.raises(NotFoundError):
        ecr.BACKEND(HOST, OPTIONS).list_images("nope")


def test_manifest_of_an_index_lists_its_children(moto: Any) -> None:
    amd = put(moto, "app", ["amd"], image_manifest("amd"))
    arm = put(moto, "app", ["arm"], image_manifest("arm"))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": 1} for d in (amd, arm)]})  # fmt: skip
    digest = put(moto, "app", ["multi"], index, OCI_INDEX)
    backend = ecr.BACKEND(HOST, OPTIONS)
    manifest = backend.manifest("app", digest)
    assert manifest.is_index
    assert manifest.children == (amd, arm)
    child = backend.manifest("app", amd)
    assert not child.is_index
    assert child.config_digest is not None
    with pytest.raises(NotFoundError):
        backend.manifest("app", "sha256:" + "0" * 64)


def test_manifest_of_an_index_skips_an_entry_without_a_digest(moto: Any) -> None:
    """ECR's manifests go through the one parser: a broken entry is skipped, not a KeyError."""
    amd = put(moto, "app", ["amd"], image_manifest("amd"))
    entries = [{"mediaType": OCI_MANIFEST, "size": 1}, {"mediaType": OCI_MANIFEST, "digest": amd}]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = put(moto, "app", ["multi"], index, OCI_INDEX)
    manifest = ecr.BACKEND(HOST, OPTIONS).manifest("app", digest)
    assert manifest.children == (amd,)


def test_resolve(moto: Any) -> None:
    digest = put(moto, "app", ["1.0"], image_manifest("a"))
    backend = ecr.BACKEND(HOST, OPTIONS)
    assert backend.resolve("app", "1.0") == digest
    assert backend.resolve("app", "missing") is None


# --- untag, delete, batching ----------------------------------------------------------------


def test_untag_keeps_the_image_and_its_other_tags(moto: Any) -> None:
    digest = put(moto, "app", ["1.0", "latest"], image_manifest("a"))
    backend = ecr.BACKEND(HOST, OPTIONS)
    assert backend.untag("app", "1.0", digest) == "ECR BatchDeleteImage"
    assert tags_of(moto) == {digest: ["latest"]}
    with pytest.raises(NotFoundError):
        backend.untag("app", "1.0", digest)


def test_delete_by_digest_removes_every_tag(moto: Any) -> None:
    digest = put(moto, "app", ["1.0", "latest"], image_manifest("a"))
    kept = put(moto, "app", ["2.0"], image_manifest("b"))
    ecr.BACKEND(HOST, OPTIONS).delete("app", digest)
    assert tags_of(moto) == {kept: ["2.0"]}


def test_apply_batches_100_ids_a_call_and_reports_already_gone(moto: Any) -> None:
    digests = [put(moto, "app", [f"t{n}"], image_manifest(str(n))) for n in range(230)]
    shared = put(moto, "app", ["keep", "drop"], image_manifest("shared"))
    backend = ecr.BACKEND(HOST, OPTIONS)
    backend.list_images("app")
    calls = count_calls(backend, "BatchDeleteImage")
    ops = [Operation(OpKind.UNTAG, shared, "drop")]
    ops += [Operation(OpKind.DELETE, d) for d in digests]
    ops += [Operation(OpKind.DELETE, "sha256:" + "f" * 64)]
    results = list(backend.apply("app", ops))
    assert len(calls) == 1 + 3  # one untag call, 231 deletes in 100 + 100 + 31
    assert [r.op for r in results] == ops
    assert all(r.ok for r in results)
    assert results[-1].already_gone
    assert not any(r.already_gone for r in results[:-1])
    assert tags_of(moto) == {shared: ["keep"]}


def test_apply_deletes_indexes_before_their_children(moto: Any) -> None:
    child = put(moto, "app", ["child"], image_manifest("c"))
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": 1}],
        }
    )
    parent = put(moto, "app", ["multi"], index, OCI_INDEX)  # fmt: skip
    backend = ecr.BACKEND(HOST, OPTIONS)
    backend.list_images("app")
    sent: list[list[str]] = []
    backend._client.meta.events.register(
        "provide-client-params.ecr.BatchDeleteImage",
        lambda params, **_: sent.append([i["imageDigest"] for i in params["imageIds"]]),
    )
    results = list(
        backend.apply("app", [Operation(OpKind.DELETE, child), Operation(OpKind.DELETE, parent)])
    )
    assert sent == [[parent], [child]]
    assert [r.op.digest for r in results] == [parent, child]
    assert all(r.ok for r in results)


def test_referenced_child_is_reported_once_not_retried(aws_env: None) -> None:
    """A failure entry with ImageReferencedByManifestList (BatchDeleteImage API reference)."""
    backend = ecr.BACKEND(HOST, OPTIONS)
    child, gone = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    with Stubber(backend._client) as stub:
        stub.add_response(
            "batch_delete_image",
            {
                "failures": [
                    {
                        "imageId": {"imageDigest": child},
                        "failureCode": "ImageReferencedByManifestList",
                        "failureReason": "Requested image referenced by manifest list: [sha256:aa]",
                    },
                    {
                        "imageId": {"imageDigest": gone},
                        "failureCode": "ImageNotFound",
                        "failureReason": "Requested image not found",
                    },
                ]
            },  # fmt: skip
        )
        results = list(
            backend.apply("app", [Operation(OpKind.DELETE, child), Operation(OpKind.DELETE, gone)])
        )
        stub.assert_no_pending_responses()
    assert results[0].error is not None
    assert results[0].error.code == "ImageReferencedByManifestList"
    assert "index" in results[0].error.message
    assert not results[0].already_gone
    assert results[1].already_gone
    assert results[1].ok


def test_access_denied_stops_the_run_with_the_permissions_to_grant(aws_env: None) -> None:
    backend = ecr.BACKEND(HOST, OPTIONS)
    with Stubber(backend._client) as stub:
        stub.add_client_error(
            "batch_delete_image", "AccessDeniedException", "not authorized", http_status_code=400
        )
        with pytest.raises(AuthError) as caught:
            list(backend.apply("app", [Operation(OpKind.DELETE, "sha256:" + "1" * 64)]))
    assert type(caught.value) is AuthError
    assert "ecr:BatchDeleteImage" in caught.value.hint
    assert "AWS_PROFILE" in caught.value.hint


def test_no_credentials_is_an_auth_error(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AuthError, match="no usable AWS credentials"):
        ecr.BACKEND(HOST, OPTIONS).list_images("app")


def test_list_repositories_under_a_prefix(moto: Any) -> None:
    for name in ("team/a", "team/b/c", "teamx", "other"):
        moto.create_repository(repositoryName=name)
    backend = ecr.BACKEND(HOST, OPTIONS)
    assert backend.list_repositories("team") == ["team/a", "team/b/c"]
    assert "other" in backend.list_repositories("")


# --- login ----------------------------------------------------------------------------------


def test_login_password_comes_from_get_authorization_token(moto: Any) -> None:
    username, password = ecr.ecr_login_password(HOST)
    assert (username, password) == ("AWS", f"{ACCOUNT}-auth-token")
    assert secrets.redact(f"x {password} y") == "x *** y"


# --- ECR Public (Stubber: moto has no ECR Public) -------------------------------------------


def test_ecr_public_maps_alias_to_registry_and_untags(aws_env: None) -> None:
    backend = ecr_public.BACKEND("public.ecr.aws", OPTIONS)
    digest = "sha256:" + "3" * 64
    with Stubber(backend._client) as stub:
        stub.add_response("describe_registries", {"registries": [
            {"registryId": ACCOUNT, "registryArn": "arn:aws:ecr-public::1:registry/1",
             "registryUri": "public.ecr.aws/acme", "verified": True,
             "aliases": [{"name": "acme", "status": "ACTIVE", "primaryRegistryAlias": True,
                          "defaultRegistryAlias": True}]}]})  # fmt: skip
        stub.add_response(
            "describe_images",
            {"imageDetails": [{"imageDigest": digest, "imageTags": ["b", "a"]}]},
            {"registryId": ACCOUNT, "repositoryName": "tools/app", "maxResults": 1000},
        )
        stub.add_response(
            "batch_delete_image",
            {"imageIds": [{"imageTag": "a", "imageDigest": digest}], "failures": []},
            {"registryId": ACCOUNT, "repositoryName": "tools/app", "imageIds": [{"imageTag": "a"}]},
        )
        (image,) = backend.list_images("acme/tools/app")
        assert image.tags == ("a", "b")
        assert backend.untag("acme/tools/app", "a", digest) == "ECR BatchDeleteImage"
        stub.assert_no_pending_responses()


def test_ecr_public_unknown_alias_is_an_auth_error(aws_env: None) -> None:
    backend = ecr_public.BACKEND("public.ecr.aws", OPTIONS)
    with Stubber(backend._client) as stub:
        stub.add_response("describe_registries", {"registries": []})
        with pytest.raises(AuthError, match="alias 'other'"):
            backend.list_images("other/app")


# --- the same backend against moto_server on loopback, through AWS_ENDPOINT_URL ---------------


@pytest.fixture
def moto_server(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with motoserver.moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url


def test_backend_reaches_moto_server_through_aws_endpoint_url(moto_server: str) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == moto_server
    client = boto3.client("ecr", region_name="us-east-1")
    client.create_repository(repositoryName="app")
    digest = put(client, "app", ["1.0", "2.0"], image_manifest("a"))
    backend = ecr.BACKEND(HOST, OPTIONS)
    (image,) = backend.list_images("app")
    assert image.tags == ("1.0", "2.0")
    list(backend.apply("app", [Operation(OpKind.UNTAG, digest, "1.0")]))
    assert tags_of(client) == {digest: ["2.0"]}


# --- the CLI end to end against moto_server ----------------------------------------------------


@pytest.mark.slow
def test_cli_detect_and_cleanup_against_moto_server(moto_server: str, tmp_path: Path) -> None:
    from tests.commands.clirun import base_env, run_cli

    client = boto3.client("ecr", region_name="us-east-1")
    client.create_repository(repositoryName="app")
    shared = put(client, "app", ["1.0", "pr-1"], image_manifest("a"))
    gone = put(client, "app", ["pr-2"], image_manifest("b"))
    put(client, "app", ["pr-3", "pr-3b"], image_manifest("c"))
    env = base_env(
        tmp_path,
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID="testing-key-id",
        AWS_SECRET_ACCESS_KEY="testing-secret-key",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        DOCKER_CONFIG=str(tmp_path / "docker"),
    )
    detect = run_cli("detect", f"{HOST}/app", env=env)
    assert detect.returncode == 0, detect.stderr
    assert "ECR" in detect.stdout
    assert "BatchDeleteImage" in detect.stdout
    args = ("cleanup", "--repo", f"{HOST}/app", "--delete-tag", "pr-.*", "--keep-newer-than", "0s")
    dry = run_cli(*args, "--dry-run", env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert len(tags_of(client)) == 3
    done = run_cli(*args, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tags_of(client) == {shared: ["1.0"]}
    assert gone not in tags_of(client)
    assert "testing-secret-key" not in done.stdout + done.stderr
