"""Build and push test images to the local registry: real blobs, real manifests.

`push_image` builds a one-layer image whose content and config `created` time you choose and
pushes it with skopeo (a real client) from an OCI layout, or over HTTP for bulk seeding where
hundreds of skopeo processes would be too slow. Indexes, referrers (OCI `subject` + the
`sha256-<hex>` fallback tag, as the OCI distribution spec describes for registries without the
referrers API) and cosign-style `.sig` tags are pushed over HTTP.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import requests

from tests.support.registry import LocalRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(seed: str) -> tuple[bytes, bytes]:
    """(gzipped tar, uncompressed tar) holding one file with `seed` as content; reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = seed.encode()
        info = tarfile.TarInfo("seed.txt")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), raw.getvalue()


def build_image(
    seed: str,
    created: dt.datetime | None = None,
    media: Literal["docker", "oci"] = "docker",
    arch: str = "amd64",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """(manifest bytes, {digest: blob}) for a one-layer image; `labels` go into the config,
    `annotations` into the manifest (as docker/metadata-action writes the revision)."""
    layer, diff = _layer(seed)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "created": (created or EPOCH).isoformat().replace("+00:00", "Z"),
            "config": {"Labels": {"ci-env.test.seed": seed, **(labels or {})}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(diff)]},
        },
        sort_keys=True,
    ).encode()
    oci = media == "oci"
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": OCI_LAYER if oci else DOCKER_LAYER,
                "digest": sha256(layer),
                "size": len(layer),
            }
        ],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, sort_keys=True).encode(), {
        sha256(config): config,
        sha256(layer): layer,
    }


def push_blob(session: requests.Session, repo: str, digest: str, data: bytes) -> None:
    if session.head(f"/v2/{repo}/blobs/{digest}", timeout=30).status_code == 200:
        return
    start = session.post(f"/v2/{repo}/blobs/uploads/", timeout=30)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = session.registry.url + location  # type: ignore[attr-defined]
    sep = "&" if "?" in location else "?"
    put = session.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    put.raise_for_status()


def push_manifest(
    session: requests.Session, repo: str, ref: str, body: bytes, media_type: str
) -> str:
    answer = session.put(
        f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type}, timeout=30
    )
    if answer.status_code >= 300:
        raise RuntimeError(f"push {repo}:{ref} -> {answer.status_code} {answer.text}")
    return answer.headers.get("Docker-Content-Digest") or sha256(body)


def _oci_layout(directory: Path, manifest: bytes, blobs: dict[str, bytes], media_type: str) -> None:
    (directory / "blobs" / "sha256").mkdir(parents=True)
    for digest, data in {**blobs, sha256(manifest): manifest}.items():
        (directory / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": sha256(manifest), "size": len(manifest)}],
    }
    (directory / "index.json").write_text(json.dumps(index))


def skopeo(
    *args: str, docker_config: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run skopeo on loopback without TLS; credentials only through an auth file, never argv."""
    cmd = ["skopeo", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)


def push_image(
    reg: LocalRegistry,
    repo: str,
    tag: str,
    *,
    seed: str | None = None,
    created: dt.datetime | None = None,
    media: Literal["docker", "oci"] = "docker",
    arch: str = "amd64",
    via: Literal["skopeo", "http"] = "skopeo",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> str:
    """Push a one-layer image to `repo:tag`; returns its manifest digest."""
    manifest, blobs = build_image(
        seed or f"{repo}:{tag}", created, media, arch, labels, annotations
    )
    media_type = json.loads(manifest)["mediaType"]
    if via == "http":
        session = reg.session()
        for digest, data in blobs.items():
            push_blob(session, repo, digest, data)
        return push_manifest(session, repo, tag, manifest, media_type)
    with tempfile.TemporaryDirectory() as tmp:
        layout = Path(tmp) / "layout"
        _oci_layout(layout, manifest, blobs, media_type)
        auth = reg.write_docker_config(Path(tmp) / "auth") / "config.json"
        fmt = ["--format", "oci"] if media == "oci" else ["--format", "v2s2"]
        skopeo(
            "copy",
            "--quiet",
            "--preserve-digests",
            *fmt,
            "--dest-tls-verify=false",
            "--dest-authfile",
            str(auth),
            f"oci:{layout}",
            f"docker://{reg.host}/{repo}:{tag}",
        )
    return sha256(manifest)


def _descriptor(session: requests.Session, repo: str, digest: str) -> dict[str, Any]:
    answer = session.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT}, timeout=30)
    answer.raise_for_status()
    body = answer.json()
    return {
        "mediaType": answer.headers["Content-Type"].split(";")[0],
        "digest": digest,
        "size": len(answer.content),
        "body": body,
    }


def push_index(
    reg: LocalRegistry,
    repo: str,
    tag: str | None,
    children: Iterable[str],
    media: Literal["docker", "oci"] = "oci",
    annotations: dict[str, str] | None = None,
) -> str:
    """Push an index (OCI) or manifest list (Docker) over `children` digests; tag optional."""
    session = reg.session()
    manifests = []
    for i, child in enumerate(children):
        desc = _descriptor(session, repo, child)
        entry = {k: desc[k] for k in ("mediaType", "digest", "size")}
        entry["platform"] = {
            "architecture": ["amd64", "arm64", "s390x", "ppc64le"][i % 4],
            "os": "linux",
        }
        manifests.append(entry)
    media_type = OCI_INDEX if media == "oci" else DOCKER_LIST
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    if annotations:
        index["annotations"] = annotations
    body = json.dumps(index).encode()
    return push_manifest(session, repo, tag or sha256(body), body, media_type)


def push_referrer(
    reg: LocalRegistry,
    repo: str,
    subject: str,
    artifact_type: str = "application/vnd.example.sbom.v1+json",
    *,
    fallback_tag: bool = True,
) -> str:
    """Push an OCI artifact whose `subject` is `subject`; maintain the `sha256-<hex>` tag index."""
    session = reg.session()
    subject_desc = _descriptor(session, repo, subject)
    empty = b"{}"
    payload = f"payload for {subject} {artifact_type}".encode()
    push_blob(session, repo, sha256(empty), empty)
    push_blob(session, repo, sha256(payload), payload)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256(empty), "size": 2},
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": sha256(payload),
                    "size": len(payload),
                }
            ],
            "subject": {k: subject_desc[k] for k in ("mediaType", "digest", "size")},
        }
    ).encode()
    digest = push_manifest(session, repo, sha256(body), body, OCI_MANIFEST)
    if fallback_tag:
        tag = subject.replace(":", "-")
        existing = session.get(
            f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_INDEX}, timeout=30
        )
        manifests = existing.json().get("manifests", []) if existing.status_code == 200 else []
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "artifactType": artifact_type,
            }
        )
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        ).encode()
        push_manifest(session, repo, tag, index, OCI_INDEX)
    return digest


def push_cosign_signature(reg: LocalRegistry, repo: str, subject: str, suffix: str = ".sig") -> str:
    """Push a cosign-style `sha256-<hex>.sig|.att|.sbom` tag for `subject`; returns its digest."""
    tag = subject.replace(":", "-") + suffix
    return push_image(reg, repo, tag, seed=f"cosign {suffix} {subject}", media="oci", via="http")


def tag(reg: LocalRegistry, repo: str, source: str, new_tag: str) -> str:
    """Point `new_tag` at the manifest `source` (a tag or digest) names; returns the digest."""
    session = reg.session()
    answer = session.get(f"/v2/{repo}/manifests/{source}", headers={"Accept": ACCEPT}, timeout=30)
    answer.raise_for_status()
    return push_manifest(session, repo, new_tag, answer.content, answer.headers["Content-Type"])


def list_tags(reg: LocalRegistry, repo: str) -> list[str]:
    answer = reg.session().get(f"/v2/{repo}/tags/list", timeout=30)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return sorted(answer.json().get("tags") or [])


def manifest_exists(reg: LocalRegistry, repo: str, ref: str) -> bool:
    answer = reg.session().head(
        f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=30
    )
    return answer.status_code == 200


def skopeo_inspect(
    reg: LocalRegistry, ref: str, docker_config: Path | None = None
) -> dict[str, Any] | None:
    """`skopeo inspect --raw` of `repo:tag` or `repo@digest`; None when it does not exist."""
    with tempfile.TemporaryDirectory() as tmp:
        config = docker_config or reg.write_docker_config(Path(tmp))
        result = skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--authfile",
            str(Path(config) / "config.json"),
            f"docker://{reg.host}/{ref}",
            check=False,
        )
    if result.returncode != 0:
        if "manifest unknown" in result.stderr.lower() or "not found" in result.stderr.lower():
            return None
        raise RuntimeError(f"skopeo inspect {ref}: {result.stderr}")
    raw: dict[str, Any] = json.loads(result.stdout)
    return raw


def seed_bulk(
    reg: LocalRegistry,
    repo: str,
    tags: Iterable[tuple[str, dt.datetime]],
    workers: int = 8,
) -> dict[str, str]:
    """Push many distinct images over HTTP in parallel; returns {tag: digest}.

    One shared layer and one config per distinct `created` time keep this to one manifest PUT
    per tag; manifests differ by an annotation, so every tag has its own digest.
    """
    items = list(tags)
    session = reg.session()
    layer, diff = _layer(f"bulk {repo}")
    push_blob(session, repo, sha256(layer), layer)
    configs: dict[dt.datetime, bytes] = {}
    for _, created in items:
        if created not in configs:
            configs[created] = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "created": created.isoformat().replace("+00:00", "Z"),
                    "rootfs": {"type": "layers", "diff_ids": [sha256(diff)]},
                },
                sort_keys=True,
            ).encode()
            push_blob(session, repo, sha256(configs[created]), configs[created])

    def one(item: tuple[str, dt.datetime]) -> tuple[str, str]:
        name, created = item
        config = configs[created]
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
                "annotations": {"ci-env.test/tag": name},
            },
            sort_keys=True,
        ).encode()
        return name, push_manifest(session, repo, name, body, OCI_MANIFEST)

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, items))


def seed_tags_on_disk(reg: LocalRegistry, repo: str, source_tag: str, names: Iterable[str]) -> int:
    """Point many tags at the manifest of `source_tag` by writing the registry's storage links.

    For scale tests (20,000 tags) where pushing each would take minutes: distribution reads tags
    from `_manifests/tags/<tag>/current/link` on every request, so no restart is needed.
    """
    base = reg.storage / "docker/registry/v2/repositories" / repo / "_manifests/tags"
    link = (base / source_tag / "current/link").read_text()
    hexdigest = link.split(":", 1)[1]
    count = 0
    for name in names:
        (base / name / "current").mkdir(parents=True, exist_ok=True)
        (base / name / "current/link").write_text(link)
        (base / name / "index/sha256" / hexdigest).mkdir(parents=True, exist_ok=True)
        (base / name / "index/sha256" / hexdigest / "link").write_text(link)
        count += 1
    return count
