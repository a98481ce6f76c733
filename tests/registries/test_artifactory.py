"""The Artifactory backend: the real local registry serves /v2, a fake the native tag delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from ci_env.errors import UsageError
from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registries.artifactory import ArtifactoryBackend
from ci_env.registries.base import first_pattern_match
from tests.fakes.artifactory_api import FakeArtifactory
from tests.support.images import list_tags, push_image, tag
from tests.support.registry import LocalRegistry


@pytest.fixture
def artifactory(registry: LocalRegistry) -> Iterator[FakeArtifactory]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(f"{registry.url}/v2")
        fake = FakeArtifactory(f"{registry.url}/artifactory")
        yield fake.install(mock)


def backend(registry: LocalRegistry, tmp_path: Path, **native: str) -> ArtifactoryBackend:
    options = BackendOptions(
        docker_config=str(registry.write_docker_config(tmp_path)), native=native
    )
    return ArtifactoryBackend(registry.host, options)


def test_registered_and_detected() -> None:
    assert backend_class("artifactory") is ArtifactoryBackend
    assert first_pattern_match(ArtifactoryBackend.host_patterns, "acme.jfrog.io")


def test_native_untag_when_the_registry_api_refuses(
    registry: LocalRegistry, artifactory: FakeArtifactory, tmp_path: Path
) -> None:
    digest = push_image(registry, "docker-local/app", "v1", via="http")
    tag(registry, "docker-local/app", "v1", "keep")
    artifactory.tags.add("docker-local/app/v1")
    made = backend(registry, tmp_path)
    images = made.list_images("docker-local/app")
    assert [(image.digest, image.tags) for image in images] == [(digest, ("keep", "v1"))]
    # distribution 2.8 answers DELETE manifests/<tag> with 400: the native delete is next.
    assert made.untag("docker-local/app", "v1", digest) == "Artifactory API tag delete"
    assert artifactory.deleted == ["docker-local/app/v1"]
    assert "keep" in list_tags(registry, "docker-local/app")


def test_repository_key_option_and_mapping(registry: LocalRegistry, tmp_path: Path) -> None:
    made = backend(registry, tmp_path)
    assert made.storage_path("docker-local/team/app") == ("docker-local", "team/app")
    with pytest.raises(UsageError):
        made.storage_path("app")
    keyed = backend(registry, tmp_path, **{"artifactory-repository": "docker-prod"})
    assert keyed.storage_path("team/app") == ("docker-prod", "team/app")


def test_probe(registry: LocalRegistry, artifactory: FakeArtifactory) -> None:
    assert ArtifactoryBackend.probe(registry.host, BackendOptions())
