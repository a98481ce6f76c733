"""`BackendOptions`: what a backend and the HTTP layer below it may know about a run.

Its own module below both `registry/` (transport, auth) and `registries/` (backends), so the
HTTP layer never imports the backend layer for it. Built by the settings loader
(`backend_options.py`); nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BackendOptions:
    """Everything a backend may know; built by the settings loader, never from os.environ here."""

    docker_config: str | None = None  # directory holding config.json (registry credentials)
    insecure_registries: frozenset[str] = frozenset()  # hosts where plain http is allowed
    timeout: float = 30.0  # seconds per request
    max_attempts: int = 5  # per request, retries included
    max_retry_seconds: float = 120.0  # total time one request may spend retrying
    max_requests_per_second: float | None = None  # global limiter; None = backend default
    native: Mapping[str, str] = field(default_factory=dict)  # NativeOption values by name
    api_urls: Mapping[str, str] = field(default_factory=dict)  # e.g. github/gitlab API base URLs
    user_agent: str = "ci-env"
    # The content cache (ci_env/registry/cache.py): its directory, None = in memory only.
    cache_dir: str | None = None
    cache_max_bytes: int = 256 * 1024 * 1024
