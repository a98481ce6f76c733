"""`yandex` (plain Docker Registry API) against the real local registry."""

from __future__ import annotations

from pathlib import Path

from ci_env.registries import backend_class
from ci_env.registries.base import first_pattern_match
from ci_env.registries.yandex import YandexBackend
from tests.support.distribution_kinds import untag_by_throwaway_then_delete
from tests.support.registry import LocalRegistry

REPO = "crp0123456789/app"


def test_hosts() -> None:
    assert backend_class("yandex") is YandexBackend
    assert first_pattern_match(YandexBackend.host_patterns, "cr.yandex")
    assert first_pattern_match(YandexBackend.host_patterns, "cr.yandexcloud.kz")
    assert not first_pattern_match(YandexBackend.host_patterns, "cr.yandex.example.com")


def test_untag_and_delete_on_the_registry_id_path(registry: LocalRegistry, tmp_path: Path) -> None:
    untag_by_throwaway_then_delete(registry, tmp_path, REPO, YandexBackend)
