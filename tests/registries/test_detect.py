"""Registry detection: the host table for every kind (tricky hosts included), the override,
the CI_REGISTRY host, and `--probe` against loopback fakes of what GitLab, Harbor,
Artifactory and Nexus answer on an anonymous `GET /v2/`."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from requests.structures import CaseInsensitiveDict

from ci_env.errors import UsageError
from ci_env.options import BackendOptions
from ci_env.reference import parse
from ci_env.registries import KINDS
from ci_env.registries.base import V2Answer
from ci_env.registries.detect import by_host, detect, loaded_kinds, same_host

TABLE = [
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", "ecr"),
    ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/app", "ecr"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app", "ecr"),
    ("123456789012.dkr-ecr.eu-west-1.on.aws/app", "ecr"),
    ("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu/app", "ecr"),
    ("public.ecr.aws/acme/app", "ecr-public"),
    ("myreg.azurecr.io/app", "acr"),
    ("MyReg.AzureCR.io/app", "acr"),
    ("nginx", "dockerhub"),
    ("acme/app", "dockerhub"),
    ("docker.io/acme/app", "dockerhub"),
    ("index.docker.io/acme/app", "dockerhub"),
    ("registry.hub.docker.com/acme/app", "dockerhub"),
    ("gcr.io/proj/app", "gcr"),
    ("eu.gcr.io/proj/app", "gcr"),
    ("container.cloud.google.com/proj/app", "gcr"),
    ("europe-west1-docker.pkg.dev/proj/repo/app", "gar"),
    ("ghcr.io/acme/app", "github"),
    ("GHCR.IO/acme/app", "github"),
    ("docker.pkg.github.com/acme/repo/app", "github"),
    ("registry.gitlab.com/group/project", "gitlab"),
    ("harbor.example.com/proj/app", "harbor"),
    ("demo.goharbor.io/proj/app", "harbor"),
    ("quay.io/acme/app", "quay"),
    ("quay.example.com/acme/app", "quay"),
    ("acme.jfrog.io/docker-local/app", "artifactory"),
    ("cr.yandex/crp123/app", "yandex"),
    ("cr.selcloud.ru/reg/app", "selectel"),
    ("localhost:5000/x", "default"),
    ("127.0.0.1:5000/x", "default"),
    ("[::1]:5000/x", "default"),
    ("registry.example.com:5050/x", "default"),
    ("10.1.2.3/x", "default"),
    ("ghcr.io.evil.example.com/x", "default"),
    ("notgcr.io/x", "default"),
    ("quay.io:443/acme/app", "quay"),
]


@pytest.mark.parametrize(("address", "kind"), TABLE)
def test_detection_table(address: str, kind: str) -> None:
    found = detect(parse(address).registry)
    assert found.kind == kind, found.reason
    assert found.backend.kind == kind


def test_every_kind_is_in_the_table() -> None:
    assert {kind for _, kind in TABLE} == set(KINDS) - {"nexus"}  # nexus: by probe only


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_imports(kind: str) -> None:
    backend = importlib.import_module(KINDS[kind]).BACKEND
    assert backend.kind == kind
    assert backend.description.title


def test_override_and_unknown_kind() -> None:
    assert detect("ghcr.io", override="default").kind == "default"
    assert detect("registry.example.com", override="YANDEX").kind == "yandex"
    assert detect("ghcr.io", override="auto").kind != "default"
    with pytest.raises(UsageError) as caught:
        detect("ghcr.io", override="bogus")
    assert "default" in caught.value.hint
    assert "yandex" in caught.value.hint


def test_ci_registry_host_means_gitlab() -> None:
    found = detect("gitlab.example.com:5050", gitlab_host="gitlab.example.com:5050")
    assert found.kind == "gitlab"
    assert "CI_REGISTRY" in found.reason
    assert detect("gitlab.example.com:5050", gitlab_host="other.example.com").kind == "default"
    assert same_host("gitlab.example.com:5050", "https://GITLAB.example.com:5050/")
    assert same_host("gitlab.example.com:5050", "gitlab.example.com")
    assert not same_host("gitlab.example.com:5050", "gitlab.example.com:443")


def test_loaded_kinds_keep_registration_order() -> None:
    names = [kind for kind, _ in loaded_kinds()]
    assert names == [kind for kind in KINDS if kind in names]
    assert names[-1] == "default"
    assert by_host("registry.example.com") is None


class _Fake(BaseHTTPRequestHandler):
    headers_for_v2: dict[str, str] = {}
    systeminfo: dict[str, str] | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path == "/v2/":
            self.send_response(401)
            for name, value in self.headers_for_v2.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/api/v2.0/systeminfo" and self.systeminfo is not None:
            body = json.dumps(self.systeminfo).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def fake_registry() -> Iterator[tuple[str, type[_Fake]]]:
    """A loopback server answering `/v2/` (and optionally Harbor's systeminfo); stops itself."""
    handler = type("Handler", (_Fake,), {"headers_for_v2": {}, "systeminfo": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    timer = threading.Timer(60, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()


# What each product answers on GET /v2/ (documented realms: GitLab `/jwt/auth`, Harbor
# `/service/token`; Artifactory's X-Artifactory-Id response header; Nexus' Server header).
PROBES = [
    (
        {
            "WWW-Authenticate": 'Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry"'
        },
        None,
        "gitlab",
    ),
    (
        {
            "WWW-Authenticate": 'Bearer realm="https://h.example.com/service/token",service="harbor-registry"'
        },
        None,
        "harbor",
    ),
    ({"WWW-Authenticate": 'Basic realm="x"', "X-Artifactory-Id": "abc123"}, None, "artifactory"),
    (
        {
            "WWW-Authenticate": 'Basic realm="Sonatype Nexus Repository Manager"',
            "Server": "Nexus/3.61.0-02 (OSS)",
        },
        None,
        "nexus",
    ),
    ({"WWW-Authenticate": 'Basic realm="x"'}, {"harbor_version": "v2.10.0"}, "harbor"),
    ({"WWW-Authenticate": 'Basic realm="x"'}, None, "default"),
]


@pytest.mark.parametrize(("headers", "systeminfo", "kind"), PROBES)
def test_probe_unknown_hosts(
    fake_registry: tuple[str, type[_Fake]],
    headers: dict[str, str],
    systeminfo: dict[str, str] | None,
    kind: str,
) -> None:
    host, handler = fake_registry
    handler.headers_for_v2 = headers
    handler.systeminfo = systeminfo
    options = BackendOptions(max_attempts=1, timeout=5)
    found = detect(host, probe_unknown=True, options=options)
    assert found.kind == kind, found.reason
    if kind != "default":
        assert found.reason.startswith("probe:")
    assert detect(host, options=options).kind == "default"  # no probing unless asked


# What each kind's `recognize` says of a `/v2/` answer: `ci-env detect`'s "why" after "probe: ".
SIGNATURES = [
    ({}, "/jwt/auth", "gitlab", "its token realm /jwt/auth is GitLab's"),
    ({}, "/service/token", "harbor", "its token realm /service/token is Harbor's"),
    ({"x-artifactory-id": "abc"}, "", "artifactory", "it sends an X-Artifactory-Id header"),
    (
        {"Server": "Nexus/3.61.0-02 (OSS)"},
        "",
        "nexus",
        "its Server header is 'Nexus/3.61.0-02 (OSS)'",
    ),
]


@pytest.mark.parametrize(("headers", "realm", "kind", "evidence"), SIGNATURES)
def test_exactly_one_kind_recognizes_its_v2_answer(
    headers: dict[str, str], realm: str, kind: str, evidence: str
) -> None:
    answer = V2Answer(CaseInsensitiveDict(headers), realm)
    said = {name: backend.recognize(answer) for name, backend in loaded_kinds()}
    assert {name: text for name, text in said.items() if text} == {kind: evidence}


def test_a_plain_v2_answer_is_recognized_by_no_kind() -> None:
    answer = V2Answer(CaseInsensitiveDict({"Server": "distribution"}), "/token")
    assert [name for name, backend in loaded_kinds() if backend.recognize(answer)] == []


def test_probe_of_unreachable_host_falls_back_to_default() -> None:
    found = detect("127.0.0.1:9", probe_unknown=True, options=BackendOptions(max_attempts=1))
    assert found.kind == "default"
