"""Retries against the real registry behind the fault-injecting loopback proxy: 429 with
Retry-After (seconds and HTTP date), 503/500 bursts and dropped connections converge, and
nothing beyond the planned tag/digest is deleted."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ci_env.errors import RegistryError
from ci_env.options import BackendOptions
from ci_env.registries.base import Operation, OpKind
from ci_env.registries.default import DistributionBackend
from tests.support import images
from tests.support.faultproxy import FaultProxy, burst, drop, rate_limited, reset
from tests.support.registry import LocalRegistry


def backend_via(
    proxy: FaultProxy, reg: LocalRegistry, tmp_path: Path, **opts: object
) -> DistributionBackend:
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {proxy.host: {"auth": auth}}}))
    options = BackendOptions(docker_config=str(tmp_path), **opts)  # type: ignore[arg-type]
    return DistributionBackend(proxy.host, options)


def seed(reg: LocalRegistry) -> tuple[str, str]:
    doomed = images.push_image(reg, "grp/app", "old", via="http")
    images.tag(reg, "grp/app", "old", "kept")
    other = images.push_image(reg, "grp/app", "gone", seed="gone", via="http")
    images.push_image(reg, "grp/app", "latest", seed="latest", via="http")
    return doomed, other


def test_faults_converge_and_delete_only_what_was_asked(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    doomed, other = seed(registry)
    with FaultProxy(registry.url) as proxy:
        proxy.add(burst(500, 2, method="GET", path="/tags/list"))
        proxy.add(burst(503, 3, method="HEAD", path="/manifests/"))
        proxy.add(drop(after_bytes=5, method="GET", path="/manifests/"))
        proxy.add(rate_limited(retry_after=1, times=1, method="DELETE"))
        proxy.add(rate_limited(retry_after=1, as_date=True, times=1, method="PUT"))
        proxy.add(reset(method="POST", path="/blobs/uploads/"))
        backend = backend_via(proxy, registry, tmp_path)
        listed = {image.digest: image.tags for image in backend.list_images("grp/app")}
        assert listed[doomed] == ("kept", "old")
        assert backend.manifest("grp/app", doomed).config_digest
        ops = [Operation(OpKind.UNTAG, doomed, "old"), Operation(OpKind.DELETE, other)]
        results = list(backend.apply("grp/app", ops))
        # A DELETE whose answer was lost is retried and then 404s: that counts as done.
        assert all(result.ok for result in results), [r.error for r in results]
        assert proxy.injected() >= 6
    assert images.list_tags(registry, "grp/app") == ["kept", "latest"]
    assert images.skopeo_inspect(registry, "grp/app:kept") is not None


def test_persistent_failure_gives_up_within_bounds(registry: LocalRegistry, tmp_path: Path) -> None:
    seed(registry)
    with FaultProxy(registry.url) as proxy:
        proxy.add(burst(503, 100, method="GET", path="/tags/list"))
        backend = backend_via(proxy, registry, tmp_path, max_attempts=3, max_retry_seconds=5)
        with pytest.raises(RegistryError) as caught:
            backend.list_images("grp/app")
        assert caught.value.status == 503
        assert proxy.count("GET", "/tags/list") == 3
