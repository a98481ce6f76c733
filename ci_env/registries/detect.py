"""Which registry kind serves a repository: override, then host patterns, then (opt-in) probing.

Order of evidence:
  1. `--repo-container-registry KIND` (or its variables), passed in as `override`; `auto` or
     empty means detect. An unknown kind is a UsageError listing the valid ones.
  2. the host of `CI_REGISTRY` (passed in by the caller as `gitlab_host`) -> gitlab, because
     self-hosted GitLab registries have arbitrary names.
  3. each registered kind's `host_patterns`, in registration order (werf's patterns plus
     registry.gitlab.com, *.jfrog.io, the ECR dkr-ecr/on.aws/amazonaws.eu forms, ...).
  4. with `probe=True`, for a host no pattern claims: one anonymous `GET /v2/`, which each
     kind's `recognize()` reads (its token realm, its headers), then each kind's `probe()`
     (Harbor's `/api/v2.0/systeminfo`, Artifactory's ping), in registration order.
  5. `default`.
A registered kind whose module cannot be imported is an error, never skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from ci_env.errors import CiEnvError
from ci_env.options import BackendOptions
from ci_env.reference import api_host
from ci_env.registries import KINDS, backend_class
from ci_env.registries.base import Backend, V2Answer, first_pattern_match
from ci_env.registry.auth import parse_challenge
from ci_env.registry.transport import Transport, host_without_port

logger = logging.getLogger(__name__)

DEFAULT = "default"
AUTO = ("", "auto")


@dataclass(frozen=True)
class Detection:
    kind: str
    backend: type[Backend]
    reason: str  # how the kind was chosen, for `ci-env detect`


def loaded_kinds() -> list[tuple[str, type[Backend]]]:
    """(kind, class) for every registered kind, in detection order. A kind whose module cannot
    be imported raises `KindModuleError` (a typo in KINDS must not fall back to `default`)."""
    return [(kind, backend_class(kind)) for kind in KINDS]


def _load(kind: str) -> type[Backend] | None:
    return dict(loaded_kinds()).get(kind)


def same_host(registry: str, other: str) -> bool:
    """Is `registry` the host `other` names? `other` may be a URL and may omit the port."""
    other = other.strip().lower()
    if "://" in other:
        other = urlsplit(other).netloc
    other = other.split("/", 1)[0]
    if not other:
        return False
    registry = registry.lower()
    return registry == other or (
        ":" not in other.lstrip("[").split("]")[-1] and host_without_port(registry) == other
    )


def by_host(registry: str, gitlab_host: str | None = None) -> Detection | None:
    """The kind whose host pattern matches `registry`; None when only `default` fits."""
    if gitlab_host and same_host(registry, gitlab_host):
        backend = _load("gitlab")
        if backend is not None:
            return Detection("gitlab", backend, f"{registry} is the host of CI_REGISTRY")
    for kind, backend in loaded_kinds():
        if kind != DEFAULT and first_pattern_match(backend.host_patterns, registry):
            return Detection(kind, backend, f"host {registry} matches the {kind} host patterns")
    return None


def _v2_answer(registry: str, options: BackendOptions) -> V2Answer | None:
    """One anonymous `GET /v2/`; None when the registry cannot be asked."""
    transport = Transport(api_host(registry), options)
    try:
        response = transport.send("GET", "/v2/")
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
    except CiEnvError as error:
        logger.debug("probing %s failed: %s", registry, error.message)
        return None
    finally:
        transport.close()
    realm = urlsplit(challenge.params.get("realm", "")).path if challenge else ""
    return V2Answer(response.headers, realm)


def probe(registry: str, options: BackendOptions) -> Detection | None:
    """Ask the live registry what it is: each kind looks at its `/v2/` answer, then each may
    ask something of its own; None when nothing tells."""
    kinds = [(kind, backend) for kind, backend in loaded_kinds() if kind != DEFAULT]
    answer = _v2_answer(registry, options)
    for kind, backend in kinds:
        if answer is not None and (evidence := backend.recognize(answer)):
            return Detection(kind, backend, f"probe: {evidence}")
    for kind, backend in kinds:
        try:
            evidence = backend.probe(registry, options)
        except CiEnvError as error:
            logger.debug("probe of %s as %s failed: %s", registry, kind, error.message)
            continue
        if evidence:
            return Detection(kind, backend, f"probe: {evidence}")
    return None


def detect(
    registry: str,
    *,
    override: str | None = None,
    gitlab_host: str | None = None,
    probe_unknown: bool = False,
    options: BackendOptions | None = None,
) -> Detection:
    """The kind for `registry` (host[:port] as in a parsed reference)."""
    choice = (override or "").strip().lower()
    if choice not in AUTO:
        return Detection(choice, backend_class(choice), "chosen with --repo-container-registry")
    found = by_host(registry, gitlab_host)
    if found is None and probe_unknown:
        found = probe(registry, options or BackendOptions())
    if found is not None:
        return found
    return Detection(
        DEFAULT,
        backend_class(DEFAULT),
        f"no known pattern matches {registry}: the Docker Registry API"
        + ("" if probe_unknown else " (--probe asks the registry itself)"),
    )
