"""The Selectel backend: native deletes, rate limits and known limitations, against fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.registries import backend_class
from ci_env.registries.base import BackendOptions, first_pattern_match
from ci_env.registries.selectel import DEFAULT_RATE, SelectelBackend
from tests.fakes._router import Call, _render
from tests.fakes.selectel_api import CR_URL, IDENTITY_URL, FakeSelectel

D = "sha256:" + "d" * 64
CREDS = {
    "selectel-username": "svc",
    "selectel-password": "svc-pw",
    "selectel-account": "12345",
    "selectel-vpc": "prod",
}


@pytest.fixture
def selectel() -> Iterator[FakeSelectel]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeSelectel(CR_URL)
        fake.images.add(("reg-1", "team/app", D))

        def identity(request: object) -> tuple[int, dict[str, str], str]:
            body = getattr(request, "body", b"") or b""
            fake.log.append(("POST", "/identity/v3/auth/tokens", {}))
            return _render(fake.identity(Call("POST", "/auth/tokens", {}, {}, body)))

        mock.add_callback("POST", f"{IDENTITY_URL}/auth/tokens", callback=identity)
        yield fake.install(mock)


def backend(native: dict[str, str]) -> SelectelBackend:
    options = BackendOptions(native=native, api_urls={"selectel-identity": IDENTITY_URL})
    made = SelectelBackend("cr.selcloud.ru", options)
    made.transport.sleep = lambda seconds: None
    return made


def test_registered_detected_and_paced() -> None:
    assert backend_class("selectel") is SelectelBackend
    assert first_pattern_match(SelectelBackend.host_patterns, "cr.selcloud.ru")
    made = backend({})
    assert made.transport.limiter.rate == DEFAULT_RATE
    faster = SelectelBackend("cr.selcloud.ru", BackendOptions(max_requests_per_second=50))
    assert faster.transport.limiter.rate == 50


def test_native_delete_with_keystone_token(selectel: FakeSelectel) -> None:
    made = backend(CREDS)
    made.transport.limiter.configure(None)
    assert made.delete("acme/team/app", D) == "Selectel CR API delete"
    assert not selectel.images
    assert selectel.log[-1][2] == {"registryId": "reg-1"}
    with pytest.raises(NotFoundError):
        made.delete("acme/team/app", D)
    assert selectel.calls("POST", "/auth/tokens") == 1  # token and registry id are reused


def test_rate_limit_waits_retry_after_plus_jitter(selectel: FakeSelectel) -> None:
    selectel.fail_next("GET", "/registries", (429, {"Retry-After": "1"}, {"message": "slow down"}))
    waits: list[float] = []
    made = backend(CREDS)
    made.transport.limiter.configure(None)
    made.transport.sleep = waits.append
    made.delete("acme/team/app", D)
    assert len(waits) == 1 and 2.0 <= waits[0] <= 6.0


def test_vpc_id_refusal_suggests_the_vpc_name(selectel: FakeSelectel) -> None:
    selectel.flaky_vpc_id = True
    creds = {**CREDS, "selectel-vpc": "", "selectel-vpc-id": "0f1e"}
    with pytest.raises(AuthError) as caught:
        backend(creds).delete("acme/team/app", D)
    assert "--repo-selectel-vpc" in caught.value.hint


def test_registry_root_is_a_clear_error(selectel: FakeSelectel) -> None:
    with pytest.raises(RegistryError, match="root of a Selectel registry"):
        backend(CREDS).delete("acme", D)
    with pytest.raises(RegistryError, match="root"):
        backend(CREDS).untag("acme", "v1", D)


def test_unknown_registry_and_missing_vpc(selectel: FakeSelectel) -> None:
    with pytest.raises(RegistryError, match="no registry 'other'"):
        backend(CREDS).delete("other/app", D)
    with pytest.raises(AuthError, match="VPC"):
        backend({**CREDS, "selectel-vpc": ""}).delete("acme/team/app", D)
