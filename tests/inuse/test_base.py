"""Normalising image references and grouping them by repository."""

import pytest

from ci_env.inuse.base import Collector, normalise

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "name", "tag", "digest"),
    [
        ("nginx", "docker.io/library/nginx", None, None),
        ("docker.io/library/nginx:1.25", "docker.io/library/nginx", "1.25", None),
        ("index.docker.io/acme/app:v1", "docker.io/acme/app", "v1", None),
        (f"ghcr.io/acme/app:v1@sha256:{HEX}", "ghcr.io/acme/app", "v1", f"sha256:{HEX}"),
        (f"docker-pullable://127.0.0.1:5000/g/a@sha256:{HEX}", "127.0.0.1:5000/g/a", None, None),
    ],
)
def test_references_are_normalised(text: str, name: str, tag: str | None, digest: str) -> None:
    ref = normalise(text)
    assert ref is not None
    assert ref.name == name
    assert ref.tag == tag
    if text.startswith("docker-pullable"):
        assert ref.digest == f"sha256:{HEX}"
    else:
        assert ref.digest == digest


@pytest.mark.parametrize("text", ["", f"sha256:{HEX}", "Not A Ref", "http://x/y"])
def test_non_references_name_nothing(text: str) -> None:
    assert normalise(text) is None


def test_collector_matches_however_spelled_and_names_every_user() -> None:
    found = Collector()
    for spelling, who in [
        ("nginx", "pod default/a (context c)"),
        ("docker.io/library/nginx:latest", "pod default/b (context c)"),
        (f"registry-1.docker.io/library/nginx@sha256:{HEX}", "deployment x/web (context c)"),
    ]:
        ref = normalise(spelling)
        assert ref is not None
        found.add(ref, who)
    use = found.result().of("docker.io", "library/nginx")
    assert use.tags == {"latest": "in use by pod default/a (context c) and 1 more"}
    assert use.digests == {f"sha256:{HEX}": "in use by deployment x/web (context c)"}
    assert not found.result().of("docker.io", "library/redis")


@pytest.mark.parametrize(
    ("spelling", "registry", "repository"),
    [
        ("registry-1.docker.io:443/library/nginx:1", "docker.io", "library/nginx"),
        ("index.docker.io:443/nginx:1", "docker.io", "library/nginx"),
        ("ghcr.io:443/acme/app:1", "ghcr.io", "acme/app"),
        ("ghcr.io/acme/app:1", "ghcr.io:443", "acme/app"),
        ("127.0.0.1:5000/acme/app:1", "127.0.0.1:5000", "acme/app"),
    ],
)
def test_default_port_spellings_match(spelling: str, registry: str, repository: str) -> None:
    found = Collector()
    ref = normalise(spelling)
    assert ref is not None
    found.add(ref, "pod default/a (context c)")
    assert found.result().of(registry, repository).tags == {
        "1": "in use by pod default/a (context c)"
    }
    assert not found.result().of("127.0.0.1:5001", repository)
