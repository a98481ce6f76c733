"""Repository addresses: the Docker reference grammar and the errors it gives."""

from __future__ import annotations

import pytest

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
