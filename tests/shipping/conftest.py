"""Fixtures shared by the shipping tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import wheels


@pytest.fixture(scope="session")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the checkout's wheel and only the base dependencies
    (built once per run: the wheel test and the GitLab component run both use it)."""
    return wheels.installed_venv(tmp_path_factory.mktemp("base-install"))
