"""The shared fixtures themselves: the real registry in both auth modes, and the image helpers."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest
import requests

from tests.support import images
from tests.support.latency import LatencyRelay
from tests.support.registry import LocalRegistry


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
