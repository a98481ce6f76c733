"""The registry client against the real docker-registry 2.8 (and `responses` fakes for the
pagination behaviours 2.8 does not have: Link pages, registries ignoring `last`)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import responses

from ci_env.errors import NotFoundError, RegistryError
from ci_env.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse_manifest
from ci_env.options import BackendOptions
from ci_env.registry import client as client_module
from ci_env.registry.auth import Credentials
from ci_env.registry.client import RegistryClient, parse_time
from tests.support import images
from tests.support.hostile import Answer, Hostile, Request, basic_challenge
from tests.support.registry import LocalRegistry


def client_for(reg: LocalRegistry, tmp_path: Path) -> RegistryClient:
    config = reg.write_docker_config(tmp_path / "docker")
    return RegistryClient(reg.host, BackendOptions(docker_config=str(config)))


def test_lists_more_than_1000_tags(registry: LocalRegistry, tmp_path: Path) -> None:
    digest = images.push_image(registry, "bulk/app", "t0000", via="http")
    session = registry.session()
    body = session.get(
        f"/v2/bulk/app/manifests/{digest}", headers={"Accept": images.ACCEPT}
    ).content
    names = [f"t{i:04d}" for i in range(1, 1010)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: images.push_manifest(session, "bulk/app", n, body, DOCKER_MANIFEST),
                names,
            )
        )
    tags = client_for(registry, tmp_path).tags("bulk/app")
    assert len(tags) == 1010
    assert tags == sorted(tags)


@pytest.mark.parametrize(
    ("kind", "media_type"),
    [("docker", DOCKER_MANIFEST), ("oci", OCI_MANIFEST)],
)
def test_resolves_image_manifests(
    registry: LocalRegistry, tmp_path: Path, kind: str, media_type: str
) -> None:
    created = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    digest = images.push_image(registry, "grp/app", "v1", media=kind, created=created)  # type: ignore[arg-type]
    client = client_for(registry, tmp_path)
    found = client.head("grp/app", "v1")
    assert found is not None
    assert found.digest == digest
    assert found.media_type == media_type
    manifest = client.manifest("grp/app", digest)
    assert manifest.media_type == media_type
    assert manifest.config_digest
    assert client.image_created("grp/app", digest) == created
    assert client.head("grp/app", "missing") is None


@pytest.mark.parametrize(("media", "media_type"), [("oci", OCI_INDEX), ("docker", DOCKER_LIST)])
def test_index_children_and_time_from_first_platform(
    registry: LocalRegistry, tmp_path: Path, media: str, media_type: str
) -> None:
    amd = images.push_image(
        registry, "grp/multi", "amd", created=dt.datetime(2024, 2, 2, tzinfo=dt.UTC), via="http"
    )
    arm = images.push_image(registry, "grp/multi", "arm", arch="arm64", via="http")
    index = images.push_index(registry, "grp/multi", "v1", [amd, arm], media=media)  # type: ignore[arg-type]
    client = client_for(registry, tmp_path)
    found = client.head("grp/multi", "v1")
    assert found is not None
    assert (found.digest, found.media_type) == (index, media_type)
    manifest = client.manifest("grp/multi", index)
    assert manifest.is_index
    assert manifest.children == (amd, arm)
    assert client.image_created("grp/multi", index) == dt.datetime(2024, 2, 2, tzinfo=dt.UTC)


def test_referrers_fall_back_to_the_tag_schema(registry: LocalRegistry, tmp_path: Path) -> None:
    subject = images.push_image(registry, "grp/app", "v1", via="http")
    referrer = images.push_referrer(registry, "grp/app", subject, "application/vnd.example.sbom")
    client = client_for(registry, tmp_path)
    assert client.referrers("grp/app", subject) == [referrer]
    manifest = client.manifest("grp/app", referrer)
    assert manifest.subject == subject
    assert manifest.artifact_type == "application/vnd.example.sbom"
    other = images.push_image(registry, "grp/app", "v2", seed="other", via="http")
    assert client.referrers("grp/app", other) == []


def test_delete_by_digest_is_idempotent(registry: LocalRegistry, tmp_path: Path) -> None:
    digest = images.push_image(registry, "grp/app", "v1", via="http")
    images.tag(registry, "grp/app", "v1", "v2")
    keep = images.push_image(registry, "grp/app", "v3", seed="keep", via="http")
    client = client_for(registry, tmp_path)
    client.delete_manifest("grp/app", digest)
    assert images.list_tags(registry, "grp/app") == ["v3"]
    with pytest.raises(NotFoundError) as caught:
        client.delete_manifest("grp/app", digest)
    assert caught.value.code == "MANIFEST_UNKNOWN"
    assert images.manifest_exists(registry, "grp/app", keep)


def test_unknown_and_emptied_repositories(registry: LocalRegistry, tmp_path: Path) -> None:
    client = client_for(registry, tmp_path)
    with pytest.raises(NotFoundError):
        client.tags("no/such")
    digest = images.push_image(registry, "grp/gone", "v1", via="http")
    client.delete_manifest("grp/gone", digest)
    assert client.tags("grp/gone") == []  # 2.8 answers {"tags": null}
    assert "grp/gone" in client.catalog("grp/")


REG = "https://registry.example.com"


@responses.activate
def test_link_pagination_relative_and_unsorted() -> None:
    responses.get(
        f"{REG}/v2/app/tags/list?n=1000",
        json={"tags": ["b", "a"]},
        headers={"Link": '</v2/app/tags/list?n=1000&last=b>; rel="next"'},
    )
    responses.get(f"{REG}/v2/app/tags/list?n=1000&last=b", json={"tags": ["c", "a"]})
    client = RegistryClient("registry.example.com", BackendOptions(), credentials=Credentials())
    assert client.tags("app") == ["a", "b", "c"]


@responses.activate
def test_registry_ignoring_last_does_not_loop() -> None:
    # Every page is the same and always links "next" to a new URL: stop when nothing is new.
    for last in ("", "&last=b", "&last=b&x=1"):
        responses.get(
            f"{REG}/v2/app/tags/list?n=1000{last}",
            json={"tags": ["a", "b"]},
            headers={
                "Link": f'<{REG}/v2/app/tags/list?n=1000&last=b{last and "&x=1"}>; rel="next"'
            },
        )
    client = RegistryClient("registry.example.com", BackendOptions(), credentials=Credentials())
    assert client.tags("app") == ["a", "b"]
    assert len(responses.calls) <= 3


@responses.activate
def test_head_falls_back_to_get() -> None:
    body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    responses.head(f"{REG}/v2/app/manifests/v1", status=405)
    responses.get(f"{REG}/v2/app/manifests/v1", body=body, content_type=OCI_MANIFEST)
    client = RegistryClient("registry.example.com", BackendOptions(), credentials=Credentials())
    found = client.head("app", "v1")
    assert found is not None
    assert found.media_type == OCI_MANIFEST
    assert found.digest.startswith("sha256:")
    assert found.size == len(body)
    accept = responses.calls[0].request.headers["Accept"]
    assert all(t in accept for t in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def test_parse_helpers() -> None:
    assert parse_time("2024-01-02T03:04:05.123456789Z") == dt.datetime(
        2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC
    )
    assert parse_time("1970-01-01T00:00:00Z") is None  # reproducible builds: no real time
    assert parse_time("garbage") is None
    assert parse_time(None) is None
    manifest = parse_manifest(b'{"manifests":[{"digest":"sha256:1"}]}', "sha256:x", OCI_INDEX)
    assert manifest.children == ("sha256:1",)
    assert manifest.is_index


def test_a_listing_that_never_ends_fails_at_max_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGES", 20)
    counter = itertools.count()

    def respond(request: Request) -> Answer:
        n = next(counter)
        link = f'</v2/app/tags/list?last=t{n}&n=1000>; rel="next"'
        return Answer(200, {"Link": link}, json.dumps({"tags": [f"t{n}"]}).encode())

    with Hostile(respond) as evil:
        client = RegistryClient(evil.host, BackendOptions())
        with pytest.raises(RegistryError, match="still paging after 20 pages"):
            client.tags("app")
        assert evil.count(path="/tags/list") == 20


def test_an_upload_location_on_another_host_gets_no_credentials(tmp_path: Path) -> None:
    # The throwaway untag uploads a blob: the registry's Location may name any host.
    with Hostile(lambda r: Answer(201, {"Docker-Content-Digest": "sha256:x"})) as other:

        def respond(request: Request) -> Answer:
            challenge = basic_challenge(request)
            if challenge is not None:
                return challenge
            return Answer(202, {"Location": f"{other.url}/v2/app/blobs/uploads/u1"})

        with Hostile(respond) as evil:
            creds = Credentials("ci", "hostile-Secret-0123")
            client = RegistryClient(evil.host, BackendOptions(), credentials=creds)
            client.upload_blob("app", b"config")
            assert evil.saw_header("Authorization")  # the registry itself got them
        assert other.count("PUT") == 1
        assert not other.saw_header("Authorization")
