"""Registry authentication: Docker-config credentials and Basic/Bearer challenges.

Credentials come from the Docker config directory ci-env was given (`BackendOptions.docker_config`):
`auths` entries are matched by full repository first (`host/ns/app`, as podman and some CI
templates write them), then by host through the docker SDK, which also runs `credHelpers` and
`credsStore` helpers and understands `identitytoken` entries.

Challenges follow the distribution token spec: a `Bearer realm=R,service=S,scope=X` challenge is
answered with `GET R?service=S&scope=X` (Basic creds) or, with an identity token,
`POST R` grant_type=refresh_token. The scope is taken from the challenge, tokens are cached per
scope, and a 401 with a cached token refreshes it once — a second 401 is an AuthError.

Once a Bearer challenge has shown the registry's realm, a request to another repository fetches
its token before sending, for the scope the same kind of request was challenged with (else the
token spec's usual `repository:<name>:<actions>`): a cleanup of many repositories then meets no
401 per repository. A wrong guess costs one 401, after which the challenge's own scope is used
and learnt; a guess the token service refuses is dropped.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from ci_env import lazy, secrets
from ci_env.errors import AuthError, CiEnvError, RegistryError, UsageError
from ci_env.options import BackendOptions
from ci_env.reference import DOCKER_HUB, api_host
from ci_env.registry import responses
from ci_env.registry.transport import Transport, plain_http_allowed

if TYPE_CHECKING:
    import docker.auth
    import docker.credentials
    import docker.errors
else:
    docker = lazy.module("docker")  # the SDK imports its whole API client: ~0.4 s

logger = logging.getLogger(__name__)

_TOKEN_MIN_SECONDS = 60  # token spec: assume 60 s when expires_in is absent
_TOKEN_MARGIN = 10  # refresh this many seconds before expiry
# What the token spec's registries ask for each kind of request (distribution 2.8: `delete`).
_USUAL_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete"}
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __repr__(self) -> str:  # never print secrets, not even in a debugger dump
        return f"Credentials(username={self.username!r})"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lowercase
    params: dict[str, str]

    @property
    def scopes(self) -> list[str]:
        return self.params.get("scope", "").split()


def parse_challenge(header: str | None) -> Challenge | None:
    """The first Basic or Bearer challenge of a `WWW-Authenticate` header."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params = {
        match.group(1).lower(): (
            match.group(2).replace('\\"', '"') if match.group(2) is not None else match.group(3)
        )
        for match in _PARAM.finditer(rest)
    }
    return Challenge(scheme, params)


def _read_config(docker_config: str) -> dict[str, Any] | None:
    path = os.path.join(docker_config, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = responses.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise UsageError(
            f"cannot read the Docker config {path}: {error}",
            "fix or remove the file, or point --docker-config at another directory",
        ) from None
    return data if isinstance(data, dict) and data else None


def _from_sdk(entry: dict[str, Any] | None) -> Credentials | None:
    if not entry:
        return None
    found = Credentials(
        username=str(entry.get("username") or entry.get("Username") or ""),
        password=str(entry.get("password") or entry.get("Password") or ""),
        identity_token=str(entry.get("IdentityToken") or entry.get("identitytoken") or ""),
    )
    secrets.register_basic(found.username, found.password)  # a registry may echo the header
    secrets.register(found.identity_token)
    return found if (found.password or found.identity_token) else None


def load_credentials(
    docker_config: str | None, registry: str, repository: str = ""
) -> Credentials | None:
    """Credentials for `registry` (as in a reference: `docker.io`, `host:port`), or None."""
    if not docker_config:
        return None
    data = _read_config(docker_config)
    if data is None:
        return None
    try:
        config = docker.auth.AuthConfig.load_config(None, data)
        auths = config.auths
        parts = repository.split("/") if repository else []
        for end in range(len(parts), 0, -1):
            key = f"{registry}/{'/'.join(parts[:end])}"
            if key in auths and _from_sdk(auths[key]):
                return _from_sdk(auths[key])
        return _from_sdk(config.resolve_authconfig(registry))
    except docker.errors.DockerException as error:
        raise AuthError(
            f"the Docker config's credential helper failed for {registry}: {error}",
            "install the credential helper named in config.json (credsStore/credHelpers) or "
            "remove it so that ci-env login can store credentials in the file",
        ) from None


class Authenticator:
    """Answers one registry's challenges; thread-safe; caches tokens per scope."""

    def __init__(self, transport: Transport, credentials: Credentials | None) -> None:
        self.transport = transport
        self.credentials = credentials
        self._lock = threading.Lock()
        self._basic = False
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, valid until)
        self._scopes: dict[tuple[str, str], Challenge] = {}  # (repository, action) -> challenge
        self._fetching: dict[str, threading.Lock] = {}  # scope -> held while fetching it
        # action -> (a challenge of that kind, the actions its scope asked for)
        self._patterns: dict[str, tuple[Challenge, str]] = {}
        self._bearer: Challenge | None = None  # any Bearer challenge: the realm and service
        self._unguessable: set[str] = set()  # actions whose guessed token could not be had

    def headers(self, key: tuple[str, str]) -> dict[str, str]:
        """Authorization for a request of kind `key` from what earlier challenges taught us:
        Basic, or a token for the scope that kind of request needs (fetched if not cached)."""
        with self._lock:
            if self._basic:
                return self._basic_header()
            challenge = self._scopes.get(key)
            guess = self._guess(key) if challenge is None else None
        if challenge is not None:
            return {"Authorization": f"Bearer {self._token(challenge)}"}
        if guess is None:
            return {}
        try:
            return {"Authorization": f"Bearer {self._token(guess)}"}
        except CiEnvError as error:  # a guess only: let the registry's challenge tell
            logger.debug("no token for the guessed scope %s: %s", guess.scopes, error.message)
            with self._lock:
                self._unguessable.add(key[1])
            return {}

    def _guess(self, key: tuple[str, str]) -> Challenge | None:
        """The challenge a new repository would send: from one seen for the same action, else
        the token spec's usual actions (pull; pull,push; delete as distribution asks)."""
        repository, action = key
        if not repository or action in self._unguessable:
            return None
        pattern = self._patterns.get(action)
        if pattern is None and self._bearer is not None:
            pattern = (self._bearer, _USUAL_ACTIONS[action])
        if pattern is None:
            return None
        challenge, actions = pattern
        return Challenge(
            "bearer", {**challenge.params, "scope": f"repository:{repository}:{actions}"}
        )

    def _learn(self, key: tuple[str, str], challenge: Challenge) -> None:
        repository, action = key
        prefix = f"repository:{repository}:"
        scopes = challenge.scopes
        with self._lock:
            self._scopes[key] = challenge
            self._bearer = challenge
            if repository and len(scopes) == 1 and scopes[0].startswith(prefix):
                self._patterns[action] = (challenge, scopes[0].removeprefix(prefix))

    def _basic_header(self) -> dict[str, str]:
        creds = self.credentials
        if creds is None or not creds.password:
            return {}
        return {
            "Authorization": requests.auth._basic_auth_str(creds.username, creds.password)  # noqa: SLF001
        }

    def answer(self, response: requests.Response, key: tuple[str, str], sent: str) -> bool:
        """After a 401: prepare credentials for one more try. False when there is nothing new.

        `sent` is the Authorization the refused request carried ("" for none): then a Basic
        refusal is final, and a refused token is fetched afresh once (unless another worker
        already replaced it).
        """
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            with self._lock:
                already = self._basic
                self._basic = True
            return not (already and sent) and bool(self._basic_header())
        self._learn(key, challenge)
        self._token(challenge, refused=sent.removeprefix("Bearer "))
        return True

    def _token(self, challenge: Challenge, refused: str = "") -> str:
        """A token for the challenge's scope, fetched once however many workers ask together
        (each fetch is a request and a signature); a cached one is reused unless refused."""
        scope = " ".join(challenge.scopes)
        with self._lock:
            cached = self._usable(scope, refused)
            fetching = self._fetching.setdefault(scope, threading.Lock())
        if cached is not None:
            return cached
        with fetching:
            with self._lock:
                cached = self._usable(scope, refused)
            if cached is not None:  # another worker fetched it meanwhile
                return cached
            token, expires_in = fetch_token(self.transport, challenge, self.credentials)
            with self._lock:
                self._tokens[scope] = (token, time.monotonic() + expires_in - _TOKEN_MARGIN)
            return token

    def _usable(self, scope: str, refused: str) -> str | None:
        found = self._tokens.get(scope)
        if found and found[1] > time.monotonic() and found[0] != refused:
            return found[0]
        return None


def _realm_url(transport: Transport, challenge: Challenge) -> str:
    realm = challenge.params.get("realm", "")
    parts = urlsplit(realm)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryError(
            f"{transport.registry} sent a Bearer challenge without a usable realm ({realm!r})",
            "the registry's token service is misconfigured",
        )
    if parts.scheme == "http" and not plain_http_allowed(parts.netloc, transport.options):
        raise AuthError(
            f"{transport.registry} asks for credentials over plain http at {realm}",
            "refusing to send them unencrypted; pass --insecure-registry "
            f"{parts.netloc} only for a trusted test registry",
        )
    return realm


def fetch_token(
    transport: Transport, challenge: Challenge, credentials: Credentials | None
) -> tuple[str, float]:
    """(token, lifetime seconds) from the challenge's realm for its service and scopes."""
    realm = _realm_url(transport, challenge)
    service = challenge.params.get("service")
    scopes = challenge.scopes
    if credentials and credentials.identity_token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credentials.identity_token,
            "client_id": "ci-env",
            "scope": " ".join(scopes),
        }
        if service:
            form["service"] = service
        response = transport.send("POST", realm, data=form)
    else:
        params: list[tuple[str, str]] = [("service", service)] if service else []
        params += [("scope", scope) for scope in scopes]
        auth = (credentials.username, credentials.password) if credentials else None
        if credentials and not credentials.password:
            auth = None
        response = transport.send("GET", realm, params=params, auth=auth)
    what = f"a token for {' '.join(scopes) or 'the registry'}"
    responses.check(response, what, transport.registry)
    try:
        body = responses.loads(response.content)
        token = str(body.get("token") or body.get("access_token") or "")
        expires_in = float(body.get("expires_in") or _TOKEN_MIN_SECONDS)
    except (ValueError, AttributeError, TypeError):
        token, expires_in = "", 0.0
    if not token:
        raise RegistryError(
            f"the token service of {transport.registry} answered without a token",
            "check the registry's token service (realm) configuration",
        )
    secrets.register(token)
    return token, max(expires_in, float(_TOKEN_MARGIN + 1))


def check_credentials(registry: str, username: str, password: str, options: BackendOptions) -> None:
    """Verify `username`/`password` against `registry` the way `docker login` does.

    `GET /v2/`; a Basic challenge is answered with the credentials, a Bearer challenge by
    fetching a token from its realm. AuthError naming the registry when refused, RegistryError
    on transport failure. `docker.io` is checked at `registry-1.docker.io`.
    """
    secrets.register_basic(username, password)
    transport = Transport(api_host(registry), options)
    shown = registry if registry != DOCKER_HUB else "Docker Hub (docker.io)"
    try:
        first = transport.send("GET", "/v2/")
        challenge = parse_challenge(first.headers.get("WWW-Authenticate"))
        if first.status_code != 401 or challenge is None or challenge.scheme == "basic":
            # Basic, or an open /v2/: only a request carrying the credentials proves them.
            if first.status_code not in (200, 401):
                responses.check(first, "GET /v2/", shown)
            answer = transport.send("GET", "/v2/", auth=(username, password))
            if answer.status_code in (401, 403):
                raise _refused(shown, username, answer.status_code)
            responses.check(answer, "GET /v2/", shown)
            return
        _realm_url(transport, challenge)  # refuses a plain-http realm before sending anything
        try:
            fetch_token(transport, challenge, Credentials(username, password))
        except AuthError as error:
            raise _refused(shown, username, 401) from error
    finally:
        transport.close()


def _refused(shown: str, username: str, status: int) -> AuthError:
    return AuthError(
        f"{shown} refused the credentials of user {username!r} ({status})",
        "check the user name and the password/token variable; a token needs the registry "
        "read (and for cleanup, delete) permission",
    )
