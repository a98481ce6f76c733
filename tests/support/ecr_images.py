"""Images for moto's ECR: one account's registry host, a small OCI manifest, a push by tag
(shared by tests/registries/test_ecr.py and the leak test of tests/reliability/test_secrets.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.support.images import OCI_MANIFEST

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"


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
