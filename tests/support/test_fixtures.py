"""The shared fixtures themselves: the real registry in both auth modes, and the image helpers."""

from __future__ import annotations

import datetime as dt
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import images
from tests.support.faultproxy import FaultProxy
from tests.support.latency import LatencyRelay
from tests.support.latencyproxy import Network
from tests.support.registry import PASSWORD, USERNAME, LocalRegistry
from tests.support.tokenserver import SERVICE


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
def test_push_list_inspect_and_restart(auth: str) -> None:
    reg = LocalRegistry(auth).start()  # type: ignore[arg-type]
    try:
        digest = images.push_image(
            reg, "grp/app", "v1", created=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
        )
        images.tag(reg, "grp/app", "v1", "v1-alias")
        child = images.push_image(reg, "grp/app", "arm", arch="arm64", via="http")
        index = images.push_index(reg, "grp/app", "multi", [digest, child])
        referrer = images.push_referrer(reg, "grp/app", digest)
        assert images.list_tags(reg, "grp/app") == sorted(
            ["v1", "v1-alias", "arm", "multi", digest.replace(":", "-")]
        )
        assert images.skopeo_inspect(reg, "grp/app:multi")["manifests"][0]["digest"] == digest
        assert images.skopeo_inspect(reg, f"grp/app@{referrer}")["subject"]["digest"] == digest
        assert images.skopeo_inspect(reg, "grp/app:missing") is None
        assert images.manifest_exists(reg, "grp/app", index)
        reg.stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{reg.url}/v2/", timeout=1)
        reg.start()
        assert "v1" in images.list_tags(reg, "grp/app")
    finally:
        reg.close()


def test_unauthenticated_requests_are_refused(registry: LocalRegistry) -> None:
    assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 401


def test_token_server_grants_only_allowed_actions(token_registry: LocalRegistry) -> None:
    server = token_registry.token_server
    assert server is not None
    granted = server.grant("reader", ["repository:a/b:pull,push,delete"])
    assert granted == [{"type": "repository", "name": "a/b", "actions": ["pull"]}]
    answer = requests.get(server.realm, auth=("ci", "wrong"), timeout=5)
    assert answer.status_code == 401


def test_bulk_seeding_gives_distinct_digests(registry: LocalRegistry) -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    pushed = images.seed_bulk(registry, "bulk", [(f"t{i}", when) for i in range(20)])
    assert len(set(pushed.values())) == 20
    assert images.seed_tags_on_disk(registry, "bulk", "t0", [f"x{i}" for i in range(50)]) == 50
    assert len(images.list_tags(registry, "bulk")) == 70


def test_latency_proxy_delays_each_request_without_serialising(
    token_registry: LocalRegistry,
) -> None:
    """8 clients on 8 keep-alive connections have 8 requests in flight, each one at least the
    round trip late, and the token flow crosses the proxy too (counted and delayed)."""
    rtt = 0.5
    with Network(token_registry, rtt, lifetime=60) as net:
        challenge = requests.get(f"http://{net.host}/v2/", timeout=10)
        realm = challenge.headers["WWW-Authenticate"].split('realm="')[1].split('"')[0]
        assert realm.startswith(net.token.url if net.token else "-")
        grant = requests.get(
            realm, params={"service": SERVICE}, auth=(USERNAME, PASSWORD), timeout=10
        )
        headers = {"Authorization": f"Bearer {grant.json()['token']}"}
        assert net.methods() == {"GET": 1, "token": 1}
        net.reset_counts()
        barrier = threading.Barrier(8)

        def client(_: int) -> list[float]:
            with requests.Session() as session:
                barrier.wait(timeout=10)
                took = []
                for _ in range(2):  # the second request reuses the connection (keep-alive)
                    start = time.monotonic()
                    answer = session.get(f"http://{net.host}/v2/", headers=headers, timeout=10)
                    took.append(time.monotonic() - start)
                    assert answer.status_code == 200
                return took

        with ThreadPoolExecutor(8) as pool:
            times = [t for took in pool.map(client, range(8)) for t in took]
        assert net.registry.peak == 8
        assert net.registry.connections == 8
        assert min(times) >= rtt
        assert net.methods() == {"GET": 16, "token": 0}
        assert net.listing() == 0
    assert challenge.status_code == 401
    assert grant.status_code == 200


def test_the_proxy_adds_no_delayed_ack_wait_to_a_kept_alive_connection() -> None:
    """An answer's headers and body are two writes: with Nagle's algorithm on the proxy's
    socket the body waited for the client's delayed ACK, ~40 ms a request, which capped the
    network benchmark's clients at a third of the requests they could send."""
    reg = LocalRegistry("none", lifetime=60).start()
    try:
        with FaultProxy(reg.url, lifetime=60) as proxy, requests.Session() as session:
            took = []
            for _ in range(21):
                start = time.monotonic()
                assert session.get(f"{proxy.url}/v2/", timeout=10).status_code == 200
                took.append(time.monotonic() - start)
            assert proxy.connections == 1
        assert statistics.median(took) < 0.030, took
    finally:
        reg.close()


def test_latency_relay_passes_bytes_one_delay_late() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        upstream = f"127.0.0.1:{server.getsockname()[1]}"
        with LatencyRelay(upstream, delay=0.2, lifetime=30) as relay:
            host, port = relay.host.split(":")
            with socket.create_connection((host, int(port)), timeout=10) as client:
                start = time.monotonic()
                client.sendall(b"ping")
                far, _ = server.accept()
                with far:
                    far.settimeout(10)
                    assert far.recv(16) == b"ping"
                    assert time.monotonic() - start >= 0.2
                    far.sendall(b"pong")
                    assert client.recv(16) == b"pong"
