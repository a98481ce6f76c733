"""Auth: Docker-config lookup (auths, full-repository keys, identitytoken, credHelpers), the
Basic and Bearer handshakes against the real registries, token caching and refresh-once."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import responses

from ci_env import secrets
from ci_env.errors import AuthError, RegistryError, UsageError
from ci_env.options import BackendOptions
from ci_env.registry.auth import Credentials, check_credentials, load_credentials, parse_challenge
from ci_env.registry.client import RegistryClient
from tests.support import images
from tests.support.registry import LocalRegistry

FAST = BackendOptions(max_attempts=2, max_retry_seconds=2, timeout=10)


def write_config(directory: Path, data: dict[str, object]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return str(directory)


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_parse_challenge() -> None:
    found = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push repository:c:pull"'
    )
    assert found is not None
    assert found.scheme == "bearer"
    assert found.params["realm"] == "https://auth.example.com/token"
    assert found.scopes == ["repository:a/b:pull,push", "repository:c:pull"]
    basic_challenge = parse_challenge('Basic realm="x"')
    assert basic_challenge is not None
    assert basic_challenge.scheme == "basic"
    assert parse_challenge("Negotiate abc") is None
    assert parse_challenge(None) is None


def test_lookup_by_full_repository_then_host(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "auths": {
                "registry.example.com": {"auth": basic("host-user", "host-pass")},
                "registry.example.com/team": {"auth": basic("team-user", "team-pass")},
                "https://index.docker.io/v1/": {"auth": basic("hub-user", "hub-pass")},
                "token.example.com": {"identitytoken": "refresh-tok"},
            }
        },
    )
    assert load_credentials(config, "registry.example.com", "team/app") == Credentials(
        "team-user", "team-pass"
    )
    assert load_credentials(config, "registry.example.com", "other/app") == Credentials(
        "host-user", "host-pass"
    )
    assert load_credentials(config, "docker.io", "library/nginx") == Credentials(
        "hub-user", "hub-pass"
    )
    assert load_credentials(config, "token.example.com") == Credentials(
        identity_token="refresh-tok"
    )
    assert load_credentials(config, "unknown.example.com") is None
    assert "team-pass" in secrets.registered()
    assert "team-pass" not in repr(load_credentials(config, "registry.example.com", "team/x"))


def test_missing_or_broken_config(tmp_path: Path) -> None:
    assert load_credentials(None, "ghcr.io") is None
    assert load_credentials(str(tmp_path / "nope"), "ghcr.io") is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read the Docker config"):
        load_credentials(str(tmp_path), "ghcr.io")


def test_cred_helper_is_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helper-user\\",'
        '\\"Secret\\":\\"helper-secret-1\\"}"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    config = write_config(tmp_path / "cfg", {"credHelpers": {"ghcr.io": "fake"}})
    assert load_credentials(config, "ghcr.io", "acme/app") == Credentials(
        "helper-user", "helper-secret-1"
    )
    broken = write_config(tmp_path / "cfg2", {"credsStore": "missing-helper"})
    with pytest.raises(AuthError, match="credential helper"):
        load_credentials(broken, "ghcr.io")


@pytest.mark.parametrize("fixture", ["registry", "token_registry"])
def test_check_credentials(fixture: str, request: pytest.FixtureRequest) -> None:
    reg: LocalRegistry = request.getfixturevalue(fixture)
    check_credentials(reg.host, reg.username, reg.password, FAST)
    with pytest.raises(AuthError, match=reg.host) as caught:
        check_credentials(reg.host, reg.username, "wrong-password", FAST)
    assert type(caught.value) is AuthError


def test_check_credentials_transport_failure() -> None:
    with pytest.raises(RegistryError, match="127.0.0.1:9"):
        check_credentials("127.0.0.1:9", "u", "p", BackendOptions(max_attempts=1))


def test_token_flow_and_scoped_permissions(token_registry: LocalRegistry, tmp_path: Path) -> None:
    digest = images.push_image(token_registry, "grp/app", "v1", via="http")
    config = token_registry.write_docker_config(tmp_path / "ci")
    client = RegistryClient(token_registry.host, BackendOptions(docker_config=str(config)))
    assert client.tags("grp/app") == ["v1"]
    assert client.head("grp/app", "v1") is not None
    server = token_registry.token_server
    assert server is not None
    fetched = server.requests["GET"]
    for _ in range(5):  # cached per scope: no new token requests
        client.head("grp/app", "v1")
    assert server.requests["GET"] == fetched
    # The reader may pull but the token server grants no delete: AuthError, nothing deleted.
    reader = token_registry.write_docker_config(tmp_path / "reader", "reader", "reader-pass-123")
    weak = RegistryClient(token_registry.host, BackendOptions(docker_config=str(reader)))
    assert weak.head("grp/app", "v1") is not None
    with pytest.raises(AuthError):
        weak.delete_manifest("grp/app", digest)
    assert images.manifest_exists(token_registry, "grp/app", digest)


def test_identity_token_uses_refresh_grant(token_registry: LocalRegistry, tmp_path: Path) -> None:
    images.push_image(token_registry, "grp/app", "v1", via="http")
    server = token_registry.token_server
    assert server is not None
    server.refresh_tokens["refresh-abc-123"] = "ci"
    config = write_config(
        tmp_path, {"auths": {token_registry.host: {"identitytoken": "refresh-abc-123"}}}
    )
    client = RegistryClient(token_registry.host, BackendOptions(docker_config=config))
    assert client.tags("grp/app") == ["v1"]
    assert server.requests["POST"] >= 1


REG = "https://registry.example.com"
REALM = "https://auth.example.com/token"
CHALLENGE = f'Bearer realm="{REALM}",service="reg",scope="repository:app:pull"'


@responses.activate
def test_expired_token_is_refreshed_once_then_refused() -> None:
    responses.get(f"{REG}/v2/app/tags/list", status=401, headers={"WWW-Authenticate": CHALLENGE})
    responses.get(REALM, json={"token": "tok-one-1"})
    responses.get(f"{REG}/v2/app/tags/list", json={"tags": ["a"]})
    client = RegistryClient(
        "registry.example.com", FAST, credentials=Credentials("user", "pass-word")
    )
    assert client.tags("app") == ["a"]
    assert responses.calls[1].request.headers["Authorization"].startswith("Basic ")
    assert responses.calls[2].request.headers["Authorization"] == "Bearer tok-one-1"
    # Now the registry refuses every token: one refresh, then AuthError (no loop).
    responses.reset()
    responses.get(f"{REG}/v2/app/tags/list", status=401, headers={"WWW-Authenticate": CHALLENGE})
    responses.get(REALM, json={"token": "tok-two-2"})
    with pytest.raises(AuthError, match="registry.example.com"):
        client.tags("app")
    assert len(responses.calls) == 3  # cached token, refresh, retry


@responses.activate
def test_plain_http_realm_is_refused_for_remote_hosts() -> None:
    challenge = 'Bearer realm="http://auth.example.com/token",service="reg"'
    responses.get(f"{REG}/v2/", status=401, headers={"WWW-Authenticate": challenge})
    with pytest.raises(AuthError, match="plain http"):
        check_credentials("registry.example.com", "u", "secret-pw", FAST)


def test_parallel_first_requests_share_one_token_fetch(
    token_registry: LocalRegistry, tmp_path: Path
) -> None:
    """Eight workers refused together (no token yet) wait for one fetch of the scope's token."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    server = token_registry.token_server
    assert server is not None
    tags = [f"t{i}" for i in range(8)]
    for name in tags:
        images.push_image(token_registry, "grp/app", name, via="http")
    config = token_registry.write_docker_config(tmp_path / "docker")
    client = RegistryClient(token_registry.host, BackendOptions(docker_config=str(config)))
    before = server.requests["GET"]
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda tag: client.head("grp/app", tag), tags))
    assert all(head is not None for head in found)
    assert server.requests["GET"] - before == 1


def test_new_repositories_get_their_token_before_the_first_request(
    token_registry: LocalRegistry, tmp_path: Path
) -> None:
    """After the first challenge (which tells the realm), no request meets a 401: tokens for
    other repositories and for deleting are fetched before sending, for the scopes
    distribution asks (`repository:NAME:pull`, `repository:NAME:delete`)."""
    from tests.support.faultproxy import FaultProxy  # noqa: PLC0415

    repos = ["grp/a", "grp/b", "grp/c"]
    for repo in repos:
        images.push_image(token_registry, repo, "old", via="http")
    with FaultProxy(token_registry.url, lifetime=120) as proxy:
        config = tmp_path / "docker"
        config.mkdir(mode=0o700)
        entry = {"auths": {proxy.host: {"auth": token_registry.auth_entry()}}}
        (config / "config.json").write_text(json.dumps(entry))
        client = RegistryClient(proxy.host, BackendOptions(docker_config=str(config)))
        found = [client.head(repo, "old") for repo in repos]
        for repo, head in zip(repos, found, strict=True):
            assert head is not None
            client.delete_manifest(repo, head.digest)
        refused = [(r.method, r.path) for r in proxy.records if r.status == 401]
    assert refused == [("HEAD", "/v2/grp/a/manifests/old")]
    for repo in repos:
        assert images.list_tags(token_registry, repo) == []


def _challenge(repository: str) -> dict[str, str]:
    return {"WWW-Authenticate": CHALLENGE.replace("repository:app:", f"repository:{repository}:")}


@responses.activate
def test_a_wrong_scope_guess_costs_one_401_and_learns_the_real_scope() -> None:
    """A registry whose second repository wants other actions than the first (as a registry
    mapping repositories to projects may): the guessed token is refused, the challenge's own
    scope is fetched and used."""
    other = f'Bearer realm="{REALM}",service="reg",scope="repository:b:pull,push"'
    responses.get(f"{REG}/v2/a/tags/list", status=401, headers=_challenge("a"))
    responses.get(REALM, json={"token": "tok-a-pull"})
    responses.get(f"{REG}/v2/a/tags/list", json={"tags": ["x"]})
    responses.get(REALM, json={"token": "tok-b-guess"})
    responses.get(f"{REG}/v2/b/tags/list", status=401, headers={"WWW-Authenticate": other})
    responses.get(REALM, json={"token": "tok-b-real"})
    responses.get(f"{REG}/v2/b/tags/list", json={"tags": ["y"]})
    client = RegistryClient("registry.example.com", FAST, credentials=Credentials("u", "pass-word"))
    assert client.tags("a") == ["x"]
    assert client.tags("b") == ["y"]
    token_calls = [c.request.url for c in responses.calls if c.request.url.startswith(REALM)]
    assert "scope=repository%3Ab%3Apull&" in token_calls[1] + "&"
    assert "scope=repository%3Ab%3Apull%2Cpush" in token_calls[2]
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer tok-b-real"


@responses.activate
def test_a_guessed_scope_the_token_service_refuses_falls_back_to_the_challenge() -> None:
    """A token service that answers 403 for a scope outside the user's rights (the token spec
    lets it refuse or grant less): the guess is dropped, the request goes out unauthenticated
    and its challenge's scope is fetched as before."""
    responses.get(f"{REG}/v2/a/tags/list", status=401, headers=_challenge("a"))
    responses.get(REALM, json={"token": "tok-a-pull"})
    responses.get(f"{REG}/v2/a/tags/list", json={"tags": ["x"]})
    responses.get(REALM, status=403, json={"details": "access denied"})
    responses.get(f"{REG}/v2/b/tags/list", status=401, headers=_challenge("b"))
    responses.get(REALM, json={"token": "tok-b-pull"})
    responses.get(f"{REG}/v2/b/tags/list", json={"tags": ["y"]})
    client = RegistryClient("registry.example.com", FAST, credentials=Credentials("u", "pass-word"))
    assert client.tags("a") == ["x"]
    assert client.tags("b") == ["y"]
    assert "Authorization" not in responses.calls[4].request.headers
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer tok-b-pull"
