"""`default` (DistributionBackend) end to end on the real docker-registry 2.8, with htpasswd
Basic auth and behind the Bearer token server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ci_env.options import BackendOptions
from ci_env.registries.base import Image, Operation, OpKind
from ci_env.registries.default import DistributionBackend
from tests.support import images
from tests.support.registry import LocalRegistry


def backend_for(reg: LocalRegistry, tmp_path: Path) -> DistributionBackend:
    config = reg.write_docker_config(tmp_path / "docker")
    return DistributionBackend(reg.host, BackendOptions(docker_config=str(config)))


@pytest.mark.parametrize("fixture", ["registry", "token_registry"])
def test_list_untag_delete(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    reg: LocalRegistry = request.getfixturevalue(fixture)
    when = dt.datetime(2024, 3, 3, tzinfo=dt.UTC)
    shared = images.push_image(reg, "team/app", "v1", created=when, via="http")
    images.tag(reg, "team/app", "v1", "v1-alias")
    oci = images.push_image(reg, "team/app", "v2", media="oci", via="http")
    images.push_image(reg, "other/app", "x", via="http")
    backend = backend_for(reg, tmp_path)

    found = {image.digest: image for image in backend.list_images("team/app")}
    assert found[shared].tags == ("v1", "v1-alias")
    assert found[oci].tags == ("v2",)
    assert found[oci].media_type == images.OCI_MANIFEST
    assert backend.image_time("team/app", found[shared]) == when
    assert backend.resolve("team/app", "v2") == oci
    assert backend.resolve("team/app", "no") is None
    assert backend.list_repositories("team") == ["team/app"]
    assert sorted(backend.list_repositories("")) == ["other/app", "team/app"]

    ops = [
        Operation(OpKind.UNTAG, shared, "v1"),
        Operation(OpKind.DELETE, oci),
        Operation(OpKind.DELETE, oci),  # second time: already gone, not an error
    ]
    results = list(backend.apply("team/app", ops))
    assert [r.ok for r in results] == [True, True, True]
    assert results[0].method == "throwaway manifest"
    assert results[2].already_gone
    assert images.list_tags(reg, "team/app") == ["v1-alias"]
    assert backend.list_images("team/app") == [
        Image(shared, ("v1-alias",), media_type=images.DOCKER_MANIFEST)
    ]
    assert backend.list_images("never/pushed") == []
    backend.close()


def test_manifest_graph_and_referrers(registry: LocalRegistry, tmp_path: Path) -> None:
    child = images.push_image(registry, "grp/app", "child", via="http")
    index = images.push_index(registry, "grp/app", "multi", [child])
    sbom = images.push_referrer(registry, "grp/app", child, "application/spdx+json")
    sig = images.push_cosign_signature(registry, "grp/app", child)
    backend = backend_for(registry, tmp_path)
    manifest = backend.manifest("grp/app", index)
    assert manifest.is_index
    assert manifest.children == (child,)
    assert backend.referrers("grp/app", child) == [sbom]
    tags = {tag for image in backend.list_images("grp/app") for tag in image.tags}
    assert child.replace(":", "-") + ".sig" in tags
    assert sig


def test_native_untag_hook_is_used(registry: LocalRegistry, tmp_path: Path) -> None:
    class WithNative(DistributionBackend):
        untags_natively = True
        calls: list[str] = []

        def native_untag(self, repository: str, tag: str) -> str:
            # Stand-in for a native API: the test registry's own session deletes nothing
            # but records the call, then the throwaway rung below is not needed.
            self.calls.append(tag)
            return "native API"

    digest = images.push_image(registry, "grp/app", "v1", via="http")
    config = registry.write_docker_config(tmp_path / "docker")
    backend = WithNative(registry.host, BackendOptions(docker_config=str(config)))
    assert backend.untags_natively
    assert backend.untag("grp/app", "v1", digest) == "native API"
    assert WithNative.calls == ["v1"]
    assert not DistributionBackend(registry.host, BackendOptions()).untags_natively


def test_probe_hooks_share_the_client_and_delete_nothing(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    digest = images.push_image(registry, "grp/app", "v1", via="http")
    backend = backend_for(registry, tmp_path)
    assert backend.registry_api() is backend.client
    dry = backend.dry_delete("grp/app")
    assert dry == "DELETE by digest allowed (404 for a digest that does not exist)"
    assert backend.resolve("grp/app", "v1") == digest
