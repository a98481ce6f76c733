"""Repository addresses: the Docker reference grammar and the errors it gives."""

from __future__ import annotations

import pytest

from ci_env import reference
from ci_env.errors import UsageError
from ci_env.reference import api_host, parse

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("acme/app", "docker.io", "acme/app", None, None),
        ("docker.io/acme/app", "docker.io", "acme/app", None, None),
        ("index.docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("registry-1.docker.io/acme/app", "docker.io", "acme/app", None, None),
        ("ghcr.io/acme/app", "ghcr.io", "acme/app", None, None),
        ("GHCR.IO/acme/app", "ghcr.io", "acme/app", None, None),
        ("localhost:5000/x", "localhost:5000", "x", None, None),
        ("localhost/x", "localhost", "x", None, None),
        ("127.0.0.1:5000/grp/app:v1", "127.0.0.1:5000", "grp/app", "v1", None),
        ("[::1]:5000/a/b", "[::1]:5000", "a/b", None, None),
        ("host:443/a/b/c/d", "host:443", "a/b/c/d", None, None),
        (f"ghcr.io/acme/app@sha256:{HEX}", "ghcr.io", "acme/app", None, f"sha256:{HEX}"),
        (f"ghcr.io/acme/app:1@sha256:{HEX}", "ghcr.io", "acme/app", "1", f"sha256:{HEX}"),
        ("  ghcr.io/acme/app  ", "ghcr.io", "acme/app", None, None),
        ("r.example.com/a__b/c-d.e", "r.example.com", "a__b/c-d.e", None, None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str, digest: str) -> None:
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("https://ghcr.io/acme/app", "URL scheme"),
        ("ghcr.io/Acme/app", "not valid"),
        ("ghcr.io/acme//app", "not valid"),
        ("ghcr.io/acme/app/", "not valid"),
        ("ghcr.io", "without a repository path"),
        ("localhost:5000", "without a repository path"),
        ("host:99999/x", "host[:port]"),
        ("bad_host.com:50/x", "host[:port]"),
        ("ghcr.io/acme/app:-bad", "tag"),
        ("ghcr.io/acme/app:é", "tag"),
        ("ghcr.io/acme/app@sha256:abc", "digest"),
        (f"ghcr.io/acme/app@sha256:{'A' * 64}", "digest"),
        ("ghcr.io/ac me/app", "whitespace"),
        ("ghcr.io/" + "a" * 300, "255"),
    ],
)
def test_bad_references_are_usage_errors(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert says in caught.value.render()
    assert caught.value.exit_code == 2


def test_tag_refused_where_only_a_repository_fits() -> None:
    with pytest.raises(UsageError, match="names a tag"):
        parse("ghcr.io/acme/app:1", allow_tag=False)


def test_api_host_and_str() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    assert parse("nginx").api_host == "registry-1.docker.io"
    assert parse("ghcr.io/a/b").api_host == "ghcr.io"
    assert str(parse(f"ghcr.io/a/b:1@sha256:{HEX}")) == f"ghcr.io/a/b:1@sha256:{HEX}"
    assert parse("nginx").name == "docker.io/library/nginx"


# --- host helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name", "port", "bare"),
    [
        ("ghcr.io", "ghcr.io", "", "ghcr.io"),
        ("Registry.Example.com:5000", "Registry.Example.com", "5000", "registry.example.com"),
        ("host:443", "host", "443", "host"),
        ("[::1]:5000", "[::1]", "5000", "::1"),
        ("[::1]", "[::1]", "", "::1"),
        ("[FE80::1]:443", "[FE80::1]", "443", "fe80::1"),
        ("::1", "::1", "", "::1"),  # a bare IPv6 literal has no port
        ("127.0.0.1:5000", "127.0.0.1", "5000", "127.0.0.1"),
    ],
)
def test_split_port_and_hostname(host: str, name: str, port: str, bare: str) -> None:
    assert reference.split_port(host) == (name, port)
    assert reference.hostname(host) == bare


@pytest.mark.parametrize(
    "host", ["docker.io", "index.docker.io", "registry-1.docker.io", "Registry.Hub.Docker.com"]
)
def test_every_hub_alias_is_docker_hub(host: str) -> None:
    assert reference.is_docker_hub(host)
    assert api_host(host) == "registry-1.docker.io"
    assert reference.match_host(host) == "docker.io"
    assert reference.match_host(f"{host}:443") == "docker.io"
    assert parse(f"{host}/acme/app").registry == "docker.io"


@pytest.mark.parametrize(
    "host", ["docker.io.evil.com", "hub.docker.com", "ghcr.io", "docker.io:5000"]
)
def test_other_hosts_are_not_docker_hub(host: str) -> None:
    assert not reference.is_docker_hub(host)
    assert api_host(host) == host


@pytest.mark.parametrize(
    ("host", "matched"),
    [
        ("host:443", "host"),
        ("HOST:5000", "host:5000"),
        ("[::1]:443", "[::1]"),
        ("[::1]:5000", "[::1]:5000"),
        ("registry-1.docker.io:5000", "docker.io"),  # a Hub alias with any port is Hub
    ],
)
def test_match_host_drops_the_https_port(host: str, matched: str) -> None:
    assert reference.match_host(host) == matched


ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", (ACCOUNT, "us-east-1")),
        (f"{ACCOUNT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com", (ACCOUNT, "us-gov-west-1")),
        (f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", (ACCOUNT, "cn-north-1")),
        (f"{ACCOUNT}.dkr-ecr.eu-west-1.on.aws", (ACCOUNT, "eu-west-1")),
        (f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu", (ACCOUNT, "eusc-de-east-1")),
        (f"{ACCOUNT}.DKR.ECR.US-EAST-1.AMAZONAWS.COM:443", (ACCOUNT, "us-east-1")),
    ],
)
def test_private_ecr_hosts(host: str, expected: tuple[str, str]) -> None:
    assert reference.ecr_account_region(host) == expected
    assert reference.is_ecr(host)
    assert not reference.is_ecr_public(host)


@pytest.mark.parametrize(
    "host",
    [
        "12345.dkr.ecr.us-east-1.amazonaws.com",  # the account id has 12 digits
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.evil.io",
        "ecr.aws",
        "ghcr.io",
        "public.ecr.aws.evil.io",
    ],
)
def test_other_hosts_are_not_ecr(host: str) -> None:
    assert reference.ecr_account_region(host) is None
    assert not reference.is_ecr(host)


@pytest.mark.parametrize("host", ["public.ecr.aws", "Public.ECR.aws:443"])
def test_ecr_public_host(host: str) -> None:
    assert reference.is_ecr_public(host)
    assert reference.is_ecr(host)
    assert reference.ecr_account_region(host) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha512:" + "b" * 128, True),
        ("v1", False),
        ("v1\n::add-mask::x", False),  # a hostile tag list: a colon is not a digest
        ("latest:tag", False),
    ],
)
def test_is_digest(text: str, expected: bool) -> None:
    assert reference.is_digest(text) is expected
