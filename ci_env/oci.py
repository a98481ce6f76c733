"""What a registry stores, as data: media types, `Manifest`, `Descriptor`, the one manifest
parser and the digest checks.

The lowest layer beside `reference.py`, like go-containerregistry's `pkg/v1/types`: the HTTP
client (`registry/`), the backends (`registries/`, ECR's boto3 answers included) and cleanup
all parse, type and hash manifests here, so each is written once. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ci_env.errors import NotFoundError, RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"  # image-spec's empty descriptor (artifacts)
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
# Content types that say nothing about the manifest: a caching proxy or a misconfigured
# registry may serve any manifest as one of these (the body then decides).
GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})
REVISION = "org.opencontainers.image.revision"  # OCI image-spec annotations.md
DIGEST_MISMATCH = "DIGEST_MISMATCH"  # our code for a body that does not hash to its digest
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class Manifest:
    """What the digest graph needs to know about one manifest."""

    digest: str
    media_type: str
    children: tuple[str, ...] = ()  # manifests an index/list references
    subject: str | None = None  # OCI `subject` digest (this manifest is a referrer)
    config_digest: str | None = None
    artifact_type: str = ""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class Descriptor:
    """What a HEAD (or GET) of a manifest tells: its digest, media type and size."""

    digest: str
    media_type: str
    size: int = 0


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def content_digest(body: bytes, like: str = "sha256:") -> str:
    """The digest of `body` in the algorithm of digest `like` (sha256 unless it says sha512)."""
    algorithm = like.partition(":")[0].lower() if ":" in like else "sha256"
    hasher = _HASHES.get(algorithm)
    if hasher is None:
        raise RegistryError(
            f"digest {like} uses an unknown algorithm {algorithm!r}",
            "only sha256 and sha512 manifests can be checked; nothing was deleted",
            code=DIGEST_MISMATCH,
        )
    return f"{algorithm}:{hasher(body).hexdigest()}"


def check_content(body: bytes, what: str, asked: str, announced: str) -> str:
    """The digest of `body`, after checking it against the digest asked for and the one the
    registry announced (`Docker-Content-Digest`). A header is never trusted over content: a
    mismatch (a lying registry or caching proxy) raises, so nothing is deleted on its word."""
    actual = content_digest(body, asked or announced or "sha256:")
    for claimed, how in ((asked, "asked for"), (announced, "announced")):
        if claimed and claimed.lower() != actual:
            raise RegistryError(
                f"{what}: the registry {how} {claimed} but the body it served hashes to {actual}",
                "a registry or caching proxy serves wrong digests; nothing was deleted in this "
                "repository — bypass or fix the proxy, then run cleanup again",
                code=DIGEST_MISMATCH,
            )
    return actual


def json_list(data: dict[str, Any], key: str, what: str) -> list[Any]:
    """`data[key]` when it is a JSON array (null/absent: empty); anything else is a malformed
    answer, not something to iterate (`{"tags": 5}` or a string of characters)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryError(
            f"{what}: the registry's answer is malformed ({key!r} is not a list)",
            "the registry or a proxy in front of it sent a broken answer; retry later",
        )
    return value


def child_digests(data: dict[str, Any], what: str) -> list[str]:
    """Digests in `manifests` of an index or referrers list (entries without one skipped)."""
    items = json_list(data, "manifests", what)
    return [str(i["digest"]) for i in items if isinstance(i, dict) and i.get("digest")]


def header_media_type(value: str) -> str:
    """The media type of a `Content-Type` header; "" when it is generic (unknown)."""
    media_type = value.split(";")[0].strip()
    return "" if media_type.lower() in GENERIC_TYPES else media_type


def body_media_type(data: dict[str, Any], header: str = "") -> str:
    """The body's `mediaType`; else a specific header; else what the shape says (an index
    lists `manifests`, an image has `config`/`layers`)."""
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if specific := header_media_type(header):
        return specific
    if "manifests" in data:
        return OCI_INDEX
    config = data.get("config")
    if isinstance(config, dict) and config.get("mediaType") == DOCKER_CONFIG:
        return DOCKER_MANIFEST
    return OCI_MANIFEST if "config" in data or "layers" in data else ""


def parse_manifest(body: bytes | str, digest: str, content_type: str = "") -> Manifest:
    """Parse manifest JSON at the edge into the interface's `Manifest`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise RegistryError(f"manifest {digest} is not JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"manifest {digest} is not a JSON object")
    media_type = body_media_type(data, content_type)
    children: tuple[str, ...] = ()
    if media_type in INDEX_MEDIA_TYPES or "manifests" in data:
        children = tuple(child_digests(data, f"manifest {digest}"))
    config: dict[str, Any] = data["config"] if isinstance(data.get("config"), dict) else {}
    subject: dict[str, Any] = data["subject"] if isinstance(data.get("subject"), dict) else {}
    config_type = str(config.get("mediaType") or "")
    artifact_type = str(data.get("artifactType") or "")
    if not artifact_type and config_type and config_type not in IMAGE_CONFIGS:
        artifact_type = config_type
    return Manifest(
        digest=digest,
        media_type=media_type,
        children=children,
        subject=str(subject["digest"]) if subject.get("digest") else None,
        config_digest=str(config["digest"]) if config.get("digest") else None,
        artifact_type=artifact_type,
    )


def platform_child(data: dict[str, Any]) -> str | None:
    """The first real platform image of an index (skipping attestations and unknown/unknown)."""
    for item in json_list(data, "manifests", "index"):
        if not isinstance(item, dict) or "digest" not in item:
            continue
        annotations = item.get("annotations")
        platform = item.get("platform")
        annotations = annotations if isinstance(annotations, dict) else {}
        platform = platform if isinstance(platform, dict) else {}
        if "vnd.docker.reference.type" in annotations or platform.get("os") == "unknown":
            continue
        return str(item["digest"])
    return None


def new_oci_manifest(config: bytes, config_type: str, artifact_type: str = "") -> bytes:
    """A layerless OCI manifest over `config` (for probes and throwaway manifests)."""
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": sha256_digest(config), "size": len(config)},
        "layers": [],
    }
    if artifact_type:
        body["artifactType"] = artifact_type
    return json.dumps(body, sort_keys=True).encode()


def ensure_still_at(repository: str, tag: str, planned: str, current: str | None) -> None:
    """NotFoundError when the tag is gone (done); RegistryError when it points elsewhere than
    planned: it was pushed again since the plan was made, someone's new image, left alone.
    Here because both the untag ladder (`registry/`) and `Backend` (`registries/`) apply it."""
    if current is None:
        raise NotFoundError(f"tag {repository}:{tag} is already gone", status=404)
    if current != planned:
        raise RegistryError(
            f"tag {repository}:{tag} moved: it now points at {current}, not {planned}",
            "it was pushed again after the plan was made; left alone — run cleanup again",
        )
