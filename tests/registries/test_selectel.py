"""The Selectel backend: native deletes, rate limits and known limitations, against fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from ci_env.errors import AuthError, NotFoundError, RegistryError
from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registries.base import first_pattern_match
from ci_env.registries.selectel import DEFAULT_RATE, SelectelBackend
from tests.fakes import _schemas
from tests.fakes._router import Call, _render
from tests.fakes.selectel_api import CR_URL, IDENTITY_SCHEMA, IDENTITY_URL, FakeSelectel

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
            answer = _schemas.checked(fake.identity, IDENTITY_SCHEMA)
            return _render(answer(Call("POST", "/auth/tokens", {}, {}, body)))

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
    assert len(waits) == 1
    assert 2.0 <= waits[0] <= 6.0


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


def test_finds_a_registry_past_the_first_page(selectel: FakeSelectel) -> None:
    """GET /registries defaults to 10 a page; the old client asked once, without paging."""
    selectel.registries = {f"reg-{i:03}": f"other-{i:03}" for i in range(99)}
    selectel.registries["reg-last"] = "acme"  # the 100th registry of the project
    selectel.images = {("reg-last", "team/app", D)}
    made = backend(CREDS)
    made.transport.limiter.configure(None)
    assert made.delete("acme/team/app", D) == "Selectel CR API delete"
    assert not selectel.images
    pages = [query for method, path, query in selectel.log if path.endswith("/registries")]
    assert pages == [{"limit": "100", "offset": "0"}, {"limit": "100", "offset": "100"}]


@pytest.mark.parametrize("form", ["slash", "encoded"])
def test_nested_repository_in_either_path_form(selectel: FakeSelectel, form: str) -> None:
    """Selectel does not document `a/b` vs `a%2Fb`; werf sends the first, we try both."""
    selectel.repo_path = form
    made = backend(CREDS)
    made.transport.limiter.configure(None)
    made.delete("acme/team/app", D)
    assert not selectel.images
    assert selectel.calls("DELETE") == (1 if form == "slash" else 2)
