"""`gcr`/`gar` against a `responses` fake of Google's Docker Registry API.

The fake follows documented Google behaviour: `tags/list` carries a `manifest` map of digest ->
{tag[], mediaType, timeCreatedMs, timeUploadedMs, imageSizeBytes} (gcloud `container images
list-tags`, cloud.google.com/sdk/gcloud/reference/container/images/list-tags, and the map as
as go-containerregistry pkg/v1/google reads it); `DELETE manifests/<tag>` answers 202 and
only untags; deleting a digest that still has tags answers 400 GOOGLE_MANIFEST_DANGLING_TAG
(the HTTP exchange quoted in github.com/genuinetools/reg/issues/136).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import responses

from ci_env.credstore import Credentials
from ci_env.errors import AuthError
from ci_env.oci import DOCKER_MANIFEST
from ci_env.options import BackendOptions
from ci_env.registries.gar import GarBackend
from ci_env.registries.gcr import GcrBackend

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


class FakeGcr:
    """State: digest -> tags. Serves tags/list with the manifest map, untag and delete."""

    def __init__(self, host: str, repo: str) -> None:
        self.base = f"https://{host}/v2/{repo}"
        self.tags: dict[str, list[str]] = {A: ["v1", "stable"], B: ["v2"], C: []}

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback("GET", f"{self.base}/tags/list", callback=self.tags_list)
        for digest in self.tags:
            mock.add_callback("DELETE", f"{self.base}/manifests/{digest}", callback=self.delete)
        for name in ("v1", "stable", "v2"):
            mock.add_callback("DELETE", f"{self.base}/manifests/{name}", callback=self.delete)
            mock.add_callback("HEAD", f"{self.base}/manifests/{name}", callback=self.head)

    def tags_list(self, request: Any) -> tuple[int, dict[str, str], str]:
        manifest = {
            digest: {
                "tag": tags,
                "mediaType": DOCKER_MANIFEST,
                "imageSizeBytes": "100",
                "timeCreatedMs": "1704067200000",
                "timeUploadedMs": str(1706745600000 + i),
            }
            for i, (digest, tags) in enumerate(self.tags.items())
        }
        every = sorted(t for tags in self.tags.values() for t in tags)
        return 200, {}, json.dumps({"name": "p/app", "tags": every, "manifest": manifest})

    def head(self, request: Any) -> tuple[int, dict[str, str], str]:
        name = request.url.rsplit("/", 1)[1]
        for digest, tags in self.tags.items():
            if name in tags:
                return 200, {"Docker-Content-Digest": digest, "Content-Type": DOCKER_MANIFEST}, ""
        return 404, {}, ""

    def delete(self, request: Any) -> tuple[int, dict[str, str], str]:
        ref = request.url.rsplit("/", 1)[1]
        if ref.startswith("sha256:"):
            if ref not in self.tags:
                return 404, {}, json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            if self.tags[ref]:
                body = {"errors": [{"code": "GOOGLE_MANIFEST_DANGLING_TAG", "message": "tagged"}]}
                return 400, {}, json.dumps(body)
            del self.tags[ref]
            return 202, {}, ""
        for tags in self.tags.values():
            if ref in tags:
                tags.remove(ref)
                return 202, {}, ""
        return 404, {}, json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN"}]})


def make(cls: type[GcrBackend], host: str) -> GcrBackend:
    backend = cls(host, BackendOptions())
    backend.client._fixed = Credentials()  # noqa: SLF001 - anonymous fake, no Docker config
    return backend


@responses.activate
def test_listing_reads_the_manifest_map() -> None:
    fake = FakeGcr("gcr.io", "p/app")
    fake.install(responses.mock)
    images = {image.digest: image for image in make(GcrBackend, "gcr.io").list_images("p/app")}
    assert images[A].tags == ("stable", "v1")
    assert images[C].tags == ()
    assert images[A].pushed == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    assert images[A].created == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert GcrBackend.lists_untagged
    assert len(responses.calls) == 1  # one call: no HEAD per tag


@responses.activate
def test_untag_by_tag_and_delete_of_a_tagged_digest() -> None:
    fake = FakeGcr("gcr.io", "p/app")
    fake.install(responses.mock)
    backend = make(GcrBackend, "gcr.io")
    assert backend.untag("p/app", "v1", A) == "DELETE /v2 manifest by tag"
    assert fake.tags[A] == ["stable"]
    assert backend.delete("p/app", B) == "DELETE /v2 manifest by tag, then by digest"
    assert B not in fake.tags
    assert fake.tags[A] == ["stable"]
    assert backend.delete("p/app", C) == "DELETE /v2 manifest by digest"


@responses.activate
def test_gar_shares_the_behaviour() -> None:
    fake = FakeGcr("europe-west1-docker.pkg.dev", "proj/repo/app")
    fake.install(responses.mock)
    backend = make(GarBackend, "europe-west1-docker.pkg.dev")
    assert backend.kind == "gar"
    assert len(backend.list_images("proj/repo/app")) == 3


@responses.activate
def test_refusal_names_artifact_registry_roles_not_storage() -> None:
    """Container Registry was shut down on 2025-03-18; gcr.io is served by Artifact Registry,
    whose roles (not Cloud Storage's) govern deletes."""
    denied = {"errors": [{"code": "DENIED", "message": "Permission denied"}]}
    responses.add("DELETE", f"https://gcr.io/v2/p/app/manifests/{C}", json=denied, status=403)
    with pytest.raises(AuthError) as caught:
        make(GcrBackend, "gcr.io").delete("p/app", C)
    assert "roles/artifactregistry.repoAdmin" in caught.value.hint
    assert "Storage Admin" not in GcrBackend.description.cleanup_credentials
