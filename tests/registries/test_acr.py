"""The ACR backend against a fake of the documented ACR data plane and AAD token endpoint."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from ci_env import secrets
from ci_env.errors import AuthError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registries.acr import AcrBackend
from ci_env.registries.base import Image, first_pattern_match
from tests.fakes import _schemas
from tests.fakes.acr_api import AAD_SCHEMA, HOST, LOGIN_URL, FakeAcr


@pytest.fixture
def acr() -> Iterator[FakeAcr]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeAcr(f"https://{HOST}")
        for n in range(130):
            fake.add(
                "team/app",
                f"v{n}",
                f"seed{n % 65}",
                f"2024-05-01T{n // 60:02}:{n % 60:02}:00.0000000Z",
            )
        fake.add("team/app", "locked", "locked", "2024-04-01T00:00:00Z", delete_enabled=False)
        mock.add_callback(
            "POST", f"{LOGIN_URL}/tenant-1/oauth2/v2.0/token", callback=lambda req: _aad(fake, req)
        )
        yield fake.install(mock)


def _aad(fake: FakeAcr, request: object) -> tuple[int, dict[str, str], str]:
    from tests.fakes._router import Call, _render

    body = getattr(request, "body", "") or ""
    call = Call("POST", "/token", {}, {}, body.encode() if isinstance(body, str) else body)
    return _render(_schemas.checked(fake.aad, AAD_SCHEMA)(call))


OLD = "2023-03-04T05:06:07Z"
SP = {
    "azure-client-id": "sp-app",
    "azure-client-secret": "sp-secret",
    "azure-tenant-id": "tenant-1",
}


def backend(native: dict[str, str] | None = None, docker_config: str | None = None) -> AcrBackend:
    options = BackendOptions(
        native=native or {}, docker_config=docker_config, api_urls={"azure-login": LOGIN_URL}
    )
    made = AcrBackend(HOST, options)
    made.client.transport.sleep = lambda seconds: None
    return made


def test_registered_detected_and_env_fallbacks() -> None:
    assert backend_class("acr") is AcrBackend
    assert first_pattern_match(AcrBackend.host_patterns, "myreg.azurecr.io")
    fallbacks = {option.name: option.fallbacks for option in AcrBackend.native_options}
    assert fallbacks["azure-client-id"] == ("AZURE_CLIENT_ID",)
    assert fallbacks["azure-client-secret"] == ("AZURE_CLIENT_SECRET",)


def test_service_principal_lists_tags_with_times(acr: FakeAcr) -> None:
    images = {image.digest: image for image in backend(SP).list_images("team/app")}
    assert len(images) == 66
    assert sum(len(image.tags) for image in images.values()) == 131
    newest = max(image.pushed for image in images.values() if image.pushed)
    assert newest == datetime(2024, 5, 1, 2, 9, tzinfo=UTC)
    assert acr.calls("POST", "/oauth2/exchange") == 1
    assert acr.calls("GET", "/_tags") >= 2  # Link pages
    assert "sp-secret" in secrets.registered()


def test_untag_through_the_tag_api_keeps_other_tags(acr: FakeAcr) -> None:
    made = backend(SP)
    digest = acr.tags["team/app"]["v1"][0]
    assert made.untag("team/app", "v1", digest) == "ACR API tag delete"
    assert "v1" not in acr.tags["team/app"]
    assert acr.tags["team/app"]["v66"][0] == digest
    assert acr.calls("DELETE", "/v2/") == 0


def test_delete_by_digest(acr: FakeAcr) -> None:
    made = backend(SP)
    digest = acr.tags["team/app"]["v2"][0]
    assert "digest" in made.delete("team/app", digest)
    assert "v67" not in acr.tags["team/app"]


def test_locked_tag_is_reported(acr: FakeAcr) -> None:
    made = backend(SP)
    made.list_images("team/app")
    with pytest.raises(RegistryError, match="locked"):
        made.untag("team/app", "locked", acr.tags["team/app"]["locked"][0])
    assert "locked" in acr.tags["team/app"]


def test_reader_principal_error_names_the_roles(acr: FakeAcr) -> None:
    made = backend({**SP, "azure-client-id": "reader-app", "azure-client-secret": "reader-secret"})
    with pytest.raises(AuthError) as caught:
        made.untag("team/app", "v3", acr.tags["team/app"]["v3"][0])
    assert "AcrDelete" in caught.value.hint
    assert "Contributor" in caught.value.hint


def test_wrong_secret_is_an_auth_error(acr: FakeAcr) -> None:
    with pytest.raises(AuthError, match="Azure AD refused"):
        backend({**SP, "azure-client-secret": "wrong"}).list_images("team/app")


def test_identity_token_from_az_acr_login(acr: FakeAcr, tmp_path: Path) -> None:
    config = {
        "auths": {
            HOST: {
                "auth": base64.b64encode(b"00000000-0000-0000-0000-000000000000:").decode(),
                "identitytoken": "acr-refresh-sp-app",
            }
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    made = backend(docker_config=str(tmp_path))
    assert len(made.list_images("team/app")) == 66
    assert acr.calls("POST", "/oauth2/exchange") == 0


def test_admin_user_from_the_docker_config(acr: FakeAcr, tmp_path: Path) -> None:
    auth = base64.b64encode(b"myreg:admin-password").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {HOST: {"auth": auth}}}))
    made = backend(docker_config=str(tmp_path))
    digest = acr.tags["team/app"]["v4"][0]
    made.untag("team/app", "v4", digest)
    assert "v4" not in acr.tags["team/app"]


def test_manifest_and_config_blob_time_are_read_through_the_registry_api(acr: FakeAcr) -> None:
    made = backend(SP)
    digest = acr.add("team/app", "built", "built-seed", "2024-06-01T00:00:00Z", created=OLD)
    manifest = made.manifest("team/app", digest)
    assert manifest.digest == digest
    assert not manifest.is_index
    assert manifest.config_digest in acr.blobs
    # An image without a listing time (e.g. from a saved plan) gets the config's `created`.
    assert made.image_time("team/app", Image(digest)) == datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC)
    # The registry side got its own pull-scoped token, like every data-plane call.
    assert any(scope == "repository:team/app:pull" for _, scope in acr.issued.values())


def test_authority_host_option_like_the_azure_sdks() -> None:
    from ci_env.registries.acr import _authority

    def authority(value: str) -> str:
        return _authority(BackendOptions(native={"azure-authority-host": value}))

    assert authority("login.chinacloudapi.cn") == "https://login.chinacloudapi.cn"
    assert authority("http://127.0.0.1:9/") == "http://127.0.0.1:9"
    assert _authority(BackendOptions()) == "https://login.microsoftonline.com"
    fallbacks = {option.name: option.fallbacks for option in AcrBackend.native_options}
    assert fallbacks["azure-authority-host"] == ("AZURE_AUTHORITY_HOST",)


def test_tags_are_paged_in_the_lexical_order_of_last(acr: FakeAcr) -> None:
    """The spec's `last` is lexical; paired with orderby=timedesc (the old client) pages skip
    and repeat tags."""
    images = backend(SP).list_images("team/app")
    assert sorted(tag for image in images for tag in image.tags) == sorted(acr.tags["team/app"])
    assert all("orderby" not in query for method, _, query in acr.log if method == "GET")
