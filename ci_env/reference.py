"""Repository addresses, parsed with the Docker reference grammar, and what a host tells.

`ghcr.io/acme/app`, `localhost:5000/x`, `nginx` (= docker.io/library/nginx), `acme/app:1.0`,
`host/app@sha256:...`. The registry part is the first path component when it contains a `.` or
`:` or is `localhost`; otherwise the address is on Docker Hub.

Host knowledge lives here once, as go-containerregistry's `name.Registry` keeps it beside the
reference: host and port (`[::1]:5000`), Docker Hub's aliases and API host, the ECR host forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ci_env.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
ECR_PUBLIC = "public.ecr.aws"
# Private ECR: `<account>.dkr.ecr.<region>.amazonaws.com`, the `-fips`, `dkr-ecr` dual-stack,
# China (`.com.cn`), EU sovereign (`.amazonaws.eu`) and `.on.aws` forms.
ECR_PATTERN = (
    r"(?P<account>\d{12})\.dkr[.-]ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|on\.aws)"
)
_ECR = re.compile(ECR_PATTERN, re.IGNORECASE)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_KNOWN_DIGESTS = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
_MAX_NAME = 255  # distribution-spec: registry + repository name at most 255 characters


def is_digest(reference: str) -> bool:
    """A manifest reference that is a digest (`algorithm:encoded`), not a tag. A registry's
    tag list may hold names no tag grammar allows (`v1\n::x`), so a colon alone says nothing."""
    return _DIGEST.fullmatch(reference) is not None


def split_port(host: str) -> tuple[str, str]:
    """(host, port) of `host[:port]`, port "" when absent: `[::1]:5000` -> ("[::1]", "5000");
    a bare IPv6 literal (`::1`, more than one colon, no brackets) has no port."""
    if host.startswith("["):
        end = host.find("]") + 1
        return (host[:end], host[end + 1 :]) if end else (host, "")
    if host.count(":") != 1:
        return host, ""
    name, _, port = host.partition(":")
    return name, port


def hostname(host: str) -> str:
    """The host of `host[:port]`, lower-cased, an IPv6 literal without brackets (`::1`)."""
    return split_port(host)[0].lower().removeprefix("[").removesuffix("]")


def is_docker_hub(host: str) -> bool:
    """Is `host` (without a port) one of Docker Hub's names?"""
    return host.lower() in HUB_ALIASES


def ecr_account_region(host: str) -> tuple[str, str] | None:
    """(account id, region) of a private ECR host (any port); None for any other host."""
    match = _ECR.fullmatch(hostname(host))
    return (match["account"], match["region"]) if match else None


def is_ecr_public(host: str) -> bool:
    return hostname(host) == ECR_PUBLIC


def is_ecr(host: str) -> bool:
    """A private ECR or the ECR Public host, with or without a port."""
    return is_ecr_public(host) or ecr_account_region(host) is not None


def api_host(registry: str) -> str:
    """Where a registry's API is served (Docker Hub's differs from its name)."""
    return DOCKER_HUB_API if is_docker_hub(registry) else registry.lower()


def match_host(registry: str) -> str:
    """One spelling per registry, for matching references: `:443` is the https default, and
    a Hub alias with any port is Docker Hub (`registry-1.docker.io:443` = `docker.io`)."""
    name, port = split_port(registry.lower())
    if is_docker_hub(name):
        return DOCKER_HUB
    return name if port == "443" else registry.lower()


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port], lowercase; Docker Hub is "docker.io"
    repository: str  # path inside the registry, e.g. "library/nginx"
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Where the registry API is served (Docker Hub's differs from its name)."""
        return api_host(self.registry)

    @property
    def name(self) -> str:
        """`registry/repository` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def match_name(self) -> str:
        """`name` with the registry spelt one way (see `match_host`), for matching."""
        host = match_host(self.registry)
        official = host == DOCKER_HUB and "/" not in self.repository
        return f"{host}/{'library/' if official else ''}{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_registry(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first.lower(), rest
    return DOCKER_HUB, text


def parse(text: str, *, allow_tag: bool = True) -> Reference:
    """Parse a repository address; a bad one is a UsageError saying what is wrong."""
    raw = text.strip()
    if not raw:
        raise UsageError("the repository address is empty", "pass --repo HOST/PATH")
    if "://" in raw:
        raise UsageError(
            f"repository address {text!r} has a URL scheme",
            "give it without http:// or https://, e.g. ghcr.io/acme/app",
        )
    if any(char.isspace() for char in raw):
        raise UsageError(f"repository address {text!r} contains whitespace")
    rest, _, digest = raw.partition("@")
    registry, path = _split_registry(rest)
    if registry == DOCKER_HUB and "/" not in rest and _looks_like_host(rest):
        raise UsageError(
            f"{text!r} looks like a registry host without a repository path",
            f"add the repository, e.g. {rest}/acme/app",
        )
    tag = None
    last_slash = path.rfind("/")
    if ":" in path[last_slash + 1 :]:
        path, _, tag = path.rpartition(":")
    if registry != DOCKER_HUB and not _valid_host(registry):
        raise UsageError(
            f"{registry!r} in {text!r} is not a valid registry host[:port]",
            "expected e.g. ghcr.io, registry.example.com:5000 or 127.0.0.1:5000",
        )
    if is_docker_hub(registry):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not path or not _PATH.fullmatch(path):
        raise UsageError(
            f"repository path {path!r} in {text!r} is not valid",
            "paths are lowercase letters, digits and . _ - separated by /",
        )
    if tag is not None and not _TAG.fullmatch(tag):
        raise UsageError(f"tag {tag!r} in {text!r} is not valid")
    if digest and not _valid_digest(digest):
        raise UsageError(f"digest {digest!r} in {text!r} is not valid", "expected sha256:<64 hex>")
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise UsageError(f"repository name in {text!r} is longer than {_MAX_NAME} characters")
    if (tag or digest) and not allow_tag:
        raise UsageError(
            f"{text!r} names a tag or digest", "give the repository only, e.g. ghcr.io/acme/app"
        )
    return Reference(registry, path, tag, digest or None)


def _looks_like_host(text: str) -> bool:
    name = split_port(text)[0]
    return "." in name or name == "localhost" or text.startswith("[")


def _valid_host(host: str) -> bool:
    if not _HOST.fullmatch(host):
        return False
    port = split_port(host)[1]
    return not port or 0 < int(port) <= 65535


def _valid_digest(digest: str) -> bool:
    if not _DIGEST.fullmatch(digest):
        return False
    algorithm, _, encoded = digest.partition(":")
    known = _KNOWN_DIGESTS.get(algorithm)
    return known is None or bool(known.fullmatch(encoded))
