"""Transport: bounded retries (Retry-After seconds/date, backoff), no retry of refusals,
plain-http policy and the global rate limiter. HTTP is faked with `responses`; sleeping is
recorded instead of done."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
import responses

from ci_env.errors import RegistryError
from ci_env.options import BackendOptions
from ci_env.registry import transport as transport_module
from ci_env.registry.transport import (
    RateLimiter,
    Transport,
    backoff_seconds,
    is_loopback,
    plain_http_allowed,
    retry_after_seconds,
)

HOST = "registry.example.com"
URL = f"https://{HOST}/v2/app/tags/list"


def make(**options: object) -> tuple[Transport, list[float]]:
    transport = Transport(HOST, BackendOptions(**options), limiter=RateLimiter())  # type: ignore[arg-type]
    slept: list[float] = []
    transport.sleep = slept.append  # type: ignore[method-assign]
    return transport, slept


@responses.activate
def test_429_honours_retry_after_seconds() -> None:
    responses.get(URL, status=429, headers={"Retry-After": "7"})
    responses.get(URL, json={"tags": []})
    transport, slept = make()
    assert transport.send("GET", "/v2/app/tags/list").status_code == 200
    assert slept == [7.0]


@responses.activate
def test_503_honours_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    responses.get(URL, status=503, headers={"Retry-After": when})
    responses.get(URL, json={})
    transport, slept = make()
    assert transport.send("GET", "/v2/app/tags/list").ok
    assert 25 <= slept[0] <= 31


@responses.activate
def test_5xx_and_connection_errors_back_off_with_growing_jitter() -> None:
    responses.get(URL, status=500)
    responses.get(URL, body=requests.ConnectionError("reset"))
    responses.get(URL, status=502)
    responses.get(URL, json={})
    transport, slept = make()
    assert transport.send("GET", "/v2/app/tags/list").ok
    assert len(slept) == 3
    assert slept[0] <= 0.2
    assert slept[2] >= 0.4  # exponential


@responses.activate
def test_attempts_are_bounded_and_the_last_answer_returned() -> None:
    responses.get(URL, status=503)
    transport, slept = make(max_attempts=3)
    assert transport.send("GET", "/v2/app/tags/list").status_code == 503
    assert len(slept) == 2
    assert len(responses.calls) == 3


@responses.activate
def test_total_retry_time_is_bounded() -> None:
    responses.get(URL, status=429, headers={"Retry-After": "600"})
    transport, slept = make(max_retry_seconds=60)
    assert transport.send("GET", "/v2/app/tags/list").status_code == 429
    assert slept == []
    assert len(responses.calls) == 1


@responses.activate
def test_connection_failure_after_all_attempts_is_a_registry_error() -> None:
    responses.get(URL, body=requests.ConnectionError("refused"))
    transport, _ = make(max_attempts=2)
    with pytest.raises(RegistryError, match="after 2 attempt") as caught:
        transport.send("GET", "/v2/app/tags/list")
    assert HOST in caught.value.hint


@pytest.mark.parametrize("status", [401, 403, 404, 400, 405])
@responses.activate
def test_refusals_are_never_retried(status: int) -> None:
    responses.delete(f"https://{HOST}/v2/app/manifests/x", status=status)
    transport, slept = make()
    assert transport.send("DELETE", "/v2/app/manifests/x").status_code == status
    assert slept == []
    assert len(responses.calls) == 1


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(past) == 0.0
    assert all(0.1 <= backoff_seconds(1) <= 0.2 for _ in range(20))
    assert backoff_seconds(30) <= 30.0


@pytest.mark.parametrize(
    ("host", "insecure", "allowed"),
    [
        ("127.0.0.1:5000", (), True),
        ("localhost:5000", (), True),
        ("[::1]:5000", (), True),
        ("127.8.9.1", (), True),
        ("registry.local:5000", (), False),
        ("registry.local:5000", ("registry.local:5000",), True),
        ("registry.local:5000", ("registry.local",), True),
        ("10.0.0.5", (), False),
    ],
)
def test_plain_http_only_for_loopback_or_insecure(
    host: str, insecure: tuple[str, ...], allowed: bool
) -> None:
    options = BackendOptions(insecure_registries=frozenset(insecure))
    assert plain_http_allowed(host, options) is allowed
    assert is_loopback(host) is (allowed and not insecure)


@responses.activate
def test_tls_hosts_stay_https() -> None:
    transport, _ = make()
    assert transport.base_url == f"https://{HOST}"


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter()
    limiter.configure(50)
    start = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - start >= 0.19  # 10 gaps of 20 ms
    limiter.configure(None)
    start = time.monotonic()
    for _ in range(100):
        limiter.wait()
    assert time.monotonic() - start < 0.05


@responses.activate
@pytest.mark.parametrize("method", ["HEAD", "GET", "DELETE"])
def test_netrc_never_replaces_our_authorization(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests puts ~/.netrc Basic credentials over a request without `auth`; ours come from
    the Docker config only, so a netrc entry for the registry must change nothing."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {HOST} login someone password netrc-pass-123\n")
    monkeypatch.setenv("NETRC", str(netrc))
    responses.add(method, URL, status=200)
    transport, _ = make()
    transport.send(method, URL, headers={"Authorization": "Bearer tok-123"})
    transport.send(method, URL, params={"n": "10"})
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok-123"
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_a_redirected_light_request_is_followed() -> None:
    """HEAD/GET/DELETE go out prepared by hand; a redirect (a registry answering from a
    mirror or storage URL) is sent again the full way, which follows it."""
    responses.head(URL, status=307, headers={"Location": f"https://{HOST}/v2/moved"})
    responses.head(f"https://{HOST}/v2/moved", status=200, headers={"X-Where": "moved"})
    transport, _ = make()
    answer = transport.send("HEAD", URL)
    assert answer.status_code == 200
    assert answer.headers["X-Where"] == "moved"


@responses.activate
def test_light_requests_send_user_agent_and_keep_cookies() -> None:
    """A load balancer's sticky cookie set on a light request is sent on the next ones."""
    responses.get(URL, status=200, headers={"Set-Cookie": "lb=node-2; Path=/"}, json={})
    responses.get(URL, status=200, json={})
    transport, _ = make()
    transport.send("GET", URL)
    transport.send("GET", URL)
    first, second = (call.request for call in responses.calls)
    assert first.headers["User-Agent"].startswith("ci-env")
    assert second.headers["Cookie"] == "lb=node-2"


def test_a_pool_closed_by_the_pool_manager_is_not_reused() -> None:
    """The adapter keeps one pool per origin; requests' pool manager may close pools behind it
    (urllib3 1.26 closes the oldest when a fifth origin comes). A kept pool that was closed
    must be replaced, not used."""
    from tests.fakes._loopback import LoopbackApi  # noqa: PLC0415

    api = LoopbackApi(lifetime=60).start()
    try:
        api.route("HEAD", r"/v2", lambda call: (200, {}, None))
        transport, _ = make(max_attempts=1)
        assert transport.send("HEAD", f"{api.url}/v2/").status_code == 200
        # What urllib3 1.26's pool manager does to the pool it evicts: close it and forget it.
        adapter = transport.session.get_adapter(api.url)
        for pool in adapter._pools.values():  # noqa: SLF001
            pool.close()
        adapter.poolmanager.clear()
        assert transport.send("HEAD", f"{api.url}/v2/").status_code == 200
        assert api.calls("HEAD") == 2
    finally:
        api.stop()


def test_same_origin_is_scheme_host_and_port() -> None:
    transport = Transport("registry.example", BackendOptions())  # https: not loopback
    assert transport.same_origin("/v2/app/tags/list?last=a")
    assert transport.same_origin("https://REGISTRY.example:443/v2/app/tags/list")
    assert not transport.same_origin("http://registry.example/v2/app/tags/list")  # downgrade
    assert not transport.same_origin("https://registry.example:8443/v2/")
    assert not transport.same_origin("https://evil.example/v2/")
    assert not transport.same_origin("https://registry.example.evil.example/v2/")


def test_one_watchdog_thread_bounds_every_request() -> None:
    # A timer thread per request cost ~0.4 ms; the shared watchdog fires only what is due.

    early, late = transport_module._Watch(0.05), transport_module._Watch(60)
    with late, early:
        until = time.monotonic() + 5
        while not early.fired and time.monotonic() < until:
            time.sleep(0.01)
    assert early.fired
    assert not late.fired
    names = [t.name for t in threading.enumerate()]
    assert names.count("ci-env-watchdog") == 1
