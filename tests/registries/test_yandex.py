"""`yandex` (plain Docker Registry API) against the real local registry."""

from __future__ import annotations

from pathlib import Path

from ci_env.registries import backend_class
from ci_env.registries.base import BackendOptions, first_pattern_match
from ci_env.registries.yandex import YandexBackend
from tests.support.images import list_tags, manifest_exists, push_image, tag
from tests.support.registry import LocalRegistry

REPO = "crp0123456789/app"


def test_hosts() -> None:
    assert backend_class("yandex") is YandexBackend
    assert first_pattern_match(YandexBackend.host_patterns, "cr.yandex")
    assert first_pattern_match(YandexBackend.host_patterns, "cr.yandexcloud.kz")
    assert not first_pattern_match(YandexBackend.host_patterns, "cr.yandex.example.com")


def test_untag_and_delete_on_the_registry_id_path(registry: LocalRegistry, tmp_path: Path) -> None:
    kept = push_image(registry, REPO, "v1", via="http")
    tag(registry, REPO, "v1", "pr-1")
    doomed = push_image(registry, REPO, "pr-2", seed="other", via="http")
    options = BackendOptions(docker_config=str(registry.write_docker_config(tmp_path)))
    backend = YandexBackend(registry.host, options)
    try:
        # distribution refuses tag deletes, so the ladder falls through to the throwaway.
        assert backend.untag(REPO, "pr-1", kept) == "throwaway manifest"
        assert backend.delete(REPO, doomed) == "DELETE /v2 manifest by digest"
    finally:
        backend.close()
    assert list_tags(registry, REPO) == ["v1"]
    assert manifest_exists(registry, REPO, kept) and not manifest_exists(registry, REPO, doomed)
