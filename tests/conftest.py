"""Shared fixtures: the real local registry (htpasswd) and one behind a Bearer token server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.registry import LocalRegistry


@pytest.fixture
def registry() -> Iterator[LocalRegistry]:
    """A fresh `docker-registry` on 127.0.0.1 with htpasswd auth and delete enabled."""
    reg = LocalRegistry("htpasswd").start()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def token_registry() -> Iterator[LocalRegistry]:
    """A fresh `docker-registry` whose auth is the Bearer flow of `tests/support/tokenserver`.

    User `ci` may pull, push and delete; user `reader` may only pull.
    """
    reg = LocalRegistry("token").start()
    try:
        yield reg
    finally:
        reg.close()
