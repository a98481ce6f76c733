"""The untag ladder on the real docker-registry 2.8: rung 1 (DELETE by tag) answers 400 there,
so rung 3 (throwaway manifest) must remove exactly one tag; a sibling tag on the same digest
stays pullable, checked with skopeo as an independent client."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from ci_env.errors import NotFoundError, RegistryError, UnsupportedError
from ci_env.oci import OCI_MANIFEST
from ci_env.options import BackendOptions
from ci_env.registry.auth import Credentials
from ci_env.registry.client import RegistryClient
from ci_env.registry.untag import DELETE_TAG, NATIVE, THROWAWAY, UntagLadder, throwaway_manifest
from tests.support import images
from tests.support.registry import LocalRegistry


def ladder_for(reg: LocalRegistry, tmp_path: Path, **kwargs: object) -> UntagLadder:
    config = reg.write_docker_config(tmp_path / "docker")
    client = RegistryClient(reg.host, BackendOptions(docker_config=str(config)))
    return UntagLadder(client, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("media", ["docker", "oci"])
def test_throwaway_rung_keeps_the_sibling_tag(
    registry: LocalRegistry, tmp_path: Path, media: str
) -> None:
    digest = images.push_image(registry, "grp/app", "old", media=media)  # type: ignore[arg-type]
    images.tag(registry, "grp/app", "old", "kept")
    ladder = ladder_for(registry, tmp_path)
    assert ladder.untag("grp/app", "old", digest) == THROWAWAY
    assert ladder.working == THROWAWAY
    assert images.list_tags(registry, "grp/app") == ["kept"]
    assert images.skopeo_inspect(registry, "grp/app:old") is None
    kept = images.skopeo_inspect(registry, "grp/app:kept")
    assert kept is not None
    assert kept["mediaType"] in (OCI_MANIFEST, images.DOCKER_MANIFEST)
    assert images.manifest_exists(registry, "grp/app", digest)


def test_index_tag_untagged_children_survive(registry: LocalRegistry, tmp_path: Path) -> None:
    child = images.push_image(registry, "grp/multi", "child", via="http")
    index = images.push_index(registry, "grp/multi", "v1", [child])
    images.tag(registry, "grp/multi", "v1", "stable")
    ladder = ladder_for(registry, tmp_path)
    ladder.untag("grp/multi", "v1", index)
    assert images.list_tags(registry, "grp/multi") == ["child", "stable"]
    assert images.skopeo_inspect(registry, "grp/multi:stable") is not None


def test_memoised_rung_is_used_first(registry: LocalRegistry, tmp_path: Path) -> None:
    digest = images.push_image(registry, "grp/app", "a", via="http")
    for name in ("b", "c", "keep"):
        images.tag(registry, "grp/app", "a", name)
    ladder = ladder_for(registry, tmp_path)
    ladder.untag("grp/app", "a", digest)
    proxy_calls: list[str] = []
    original = ladder.client.request

    def spy(method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        proxy_calls.append(f"{method} {path}")
        return original(method, path, **kwargs)  # type: ignore[arg-type]

    ladder.client.request = spy  # type: ignore[method-assign]
    ladder.untag("grp/app", "b", digest)
    assert "DELETE /v2/grp/app/manifests/b" not in proxy_calls  # rung 1 not retried
    assert images.list_tags(registry, "grp/app") == ["c", "keep"]


def test_moved_or_missing_tag_is_left_alone(registry: LocalRegistry, tmp_path: Path) -> None:
    first = images.push_image(registry, "grp/app", "v1", via="http")
    images.push_image(registry, "grp/app", "v1", seed="re-pushed", via="http")
    ladder = ladder_for(registry, tmp_path)
    with pytest.raises(RegistryError, match="now points at"):
        ladder.untag("grp/app", "v1", first)
    assert images.list_tags(registry, "grp/app") == ["v1"]
    with pytest.raises(NotFoundError):
        ladder.untag("grp/app", "gone", first)


def test_native_rung_runs_before_throwaway(registry: LocalRegistry, tmp_path: Path) -> None:
    digest = images.push_image(registry, "grp/app", "v1", via="http")
    calls: list[tuple[str, str]] = []

    def native(repository: str, tag: str) -> str:
        calls.append((repository, tag))
        raise UnsupportedError("no native API here")

    ladder = ladder_for(registry, tmp_path, native=native)
    assert [name for name, _ in ladder.rungs] == [DELETE_TAG, NATIVE, THROWAWAY]
    assert ladder.untag("grp/app", "v1", digest) == THROWAWAY
    assert calls == [("grp/app", "v1")]


REG = "https://registry.example.com"
DIGEST = "sha256:" + "1" * 64


def _head(status: int = 200) -> None:
    headers = {"Docker-Content-Digest": DIGEST, "Content-Type": OCI_MANIFEST}
    responses.head(f"{REG}/v2/app/manifests/v1", status=status, headers=headers)


@responses.activate
def test_rung_one_done_on_202() -> None:
    _head()
    responses.delete(f"{REG}/v2/app/manifests/v1", status=202)
    client = RegistryClient("registry.example.com", BackendOptions(), credentials=Credentials())
    ladder = UntagLadder(client)
    assert ladder.untag("app", "v1", DIGEST) == DELETE_TAG
    assert [c.request.method for c in responses.calls] == ["HEAD", "DELETE"]


@responses.activate
def test_refused_everywhere_is_a_clear_refusal() -> None:
    _head()
    responses.delete(f"{REG}/v2/app/manifests/v1", status=405)
    responses.post(f"{REG}/v2/app/blobs/uploads/", status=405)
    client = RegistryClient("registry.example.com", BackendOptions(), credentials=Credentials())
    ladder = UntagLadder(client)
    with pytest.raises(UnsupportedError, match="without deleting the other tags") as caught:
        ladder.untag("app", "v1", DIGEST)
    assert "left in place" in caught.value.hint


def test_throwaway_manifests_are_unique_and_keep_the_family() -> None:
    one = throwaway_manifest("app", "v1", OCI_MANIFEST)
    two = throwaway_manifest("app", "v1", OCI_MANIFEST)
    assert one[2] != two[2]
    assert one[1] == OCI_MANIFEST
    assert throwaway_manifest("app", "v1", images.DOCKER_LIST)[1] == images.DOCKER_MANIFEST
