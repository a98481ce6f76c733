"""Never a header over content: manifest bodies are hashed, media types come from the body.

Against the real registry behind a fault proxy that rewrites headers the way a lying registry
or a misconfigured caching proxy does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ci_env.errors import RegistryError
from ci_env.oci import (
    DIGEST_MISMATCH,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    body_media_type,
    check_content,
    parse_manifest,
)
from ci_env.options import BackendOptions
from ci_env.registry.client import RegistryClient
from tests.support import images
from tests.support.faultproxy import FaultProxy, override_headers
from tests.support.registry import LocalRegistry

REPO = "grp/content"


def client_for(host: str, reg: LocalRegistry, tmp_path: Path) -> RegistryClient:
    config = tmp_path / "docker"
    config.mkdir(mode=0o700, exist_ok=True)
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": reg.auth_entry()}}}))
    return RegistryClient(host, BackendOptions(docker_config=str(config), max_attempts=1))


def test_a_wrong_announced_digest_is_refused_naming_the_tag(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    real = images.push_image(registry, REPO, "pr-1", via="http")
    other = images.push_image(registry, REPO, "stable", via="http")
    with FaultProxy(registry.url, lifetime=60) as proxy:
        proxy.add(override_headers({"Docker-Content-Digest": other}, path="/manifests/pr-1$"))
        client = client_for(proxy.host, registry, tmp_path)
        with pytest.raises(RegistryError) as error:
            client.get(REPO, "pr-1")
        assert error.value.code == DIGEST_MISMATCH
        assert "tag pr-1" in error.value.message
        assert other in error.value.message
        assert real in error.value.message
        # By digest: the body must hash to the digest asked for, whatever the header says.
        proxy.clear()
        proxy.add(override_headers({"Docker-Content-Digest": other}, path=f"/manifests/{real}$"))
        with pytest.raises(RegistryError):
            client.manifest(REPO, real)
        proxy.clear()
        assert client.get(REPO, "pr-1")[1].digest == real
        client.close()


def test_a_generic_content_type_is_unknown_and_the_body_decides(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    child = images.push_image(registry, REPO, "amd", via="http")
    index = images.push_index(registry, REPO, "v1", [child])
    with FaultProxy(registry.url, lifetime=60) as proxy:
        proxy.add(override_headers({"Content-Type": "application/json"}, path="/manifests/"))
        client = client_for(proxy.host, registry, tmp_path)
        head = client.head(REPO, "v1")
        assert head is not None
        assert head.digest == index
        assert head.media_type == ""
        manifest = client.manifest(REPO, index)
        assert manifest.media_type == OCI_INDEX
        assert manifest.children == (child,)
        client.close()


def test_media_type_from_the_shape_when_the_body_names_none() -> None:
    index = {"schemaVersion": 2, "manifests": [{"digest": "sha256:" + "a" * 64}]}
    docker = {"config": {"mediaType": "application/vnd.docker.container.image.v1+json"}}
    assert body_media_type(index, "application/json") == OCI_INDEX
    assert body_media_type(docker, "text/plain") == DOCKER_MANIFEST
    assert body_media_type({"layers": []}, "") == OCI_MANIFEST
    assert body_media_type({"layers": []}, DOCKER_MANIFEST) == DOCKER_MANIFEST
    parsed = parse_manifest(json.dumps(index).encode(), "sha256:" + "b" * 64, "application/json")
    assert parsed.is_index
    assert parsed.children == ("sha256:" + "a" * 64,)


def test_check_content_hashes_in_the_digest_algorithm() -> None:
    body = b"{}"
    sha512 = "sha512:" + hashlib.sha512(body).hexdigest()
    assert check_content(body, "m", sha512, "") == sha512
    with pytest.raises(RegistryError):
        check_content(body, "m", "md5:abc", "")
