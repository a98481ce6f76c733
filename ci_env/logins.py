"""Logging in: verify a credential against its registry, then store it in a Docker config.

Nothing is stored before the registry has accepted the credential (the Docker Registry v2
handshake in `ci_env.registry.auth`), so a wrong password never leaves a config that fails
later in a confusing place. ECR passwords come from AWS through the ECR backend's hook.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ci_env import credstore, secrets
from ci_env.errors import AuthError, CiEnvError, RegistryError
from ci_env.options import BackendOptions
from ci_env.providers.base import LoginSource

logger = logging.getLogger(__name__)

# Private ECR (`<account>.dkr.ecr.<region>.amazonaws.com`, China, FIPS, dual-stack forms) and
# ECR Public. Only decides whether to ask AWS for the password; detection proper is elsewhere.
_ECR = re.compile(
    r"[0-9]{12}\.dkr[.-]ecr(?:-fips)?\.[a-z0-9-]+\.(?:amazonaws\.com(?:\.cn)?|on\.aws|amazonaws\.eu)"
    r"|public\.ecr\.aws",
    re.IGNORECASE,
)
ECR_VARIABLE = "the AWS credentials (ecr:GetAuthorizationToken)"


def is_ecr(registry: str) -> bool:
    host = credstore.host_of(registry).split(":", 1)[0]
    return _ECR.fullmatch(host) is not None


def ecr_source(registry: str) -> LoginSource:
    """A login for an ECR host with a fresh authorization token from the ambient AWS creds."""
    try:
        from ci_env.registries.ecr import ecr_login_password  # noqa: PLC0415 - loads boto3
    except ImportError as error:
        raise CiEnvError(
            f"logging in to ECR ({registry}) is not available in this installation",
            "install ci-env with boto3, or pipe a token to `ci-env login --password-stdin`",
        ) from error
    username, password = ecr_login_password(registry)
    secrets.register(password)
    return LoginSource(registry, username, password, ECR_VARIABLE)


def verify(source: LoginSource, options: BackendOptions) -> None:
    """Raise AuthError (naming registry and variable) when the registry refuses the login."""
    from ci_env.registry.auth import check_credentials  # noqa: PLC0415 - loads requests stack

    secrets.register(source.password)
    registry = credstore.host_of(source.registry)
    try:
        check_credentials(registry, source.username, source.password, options)
    except AuthError as error:
        raise AuthError(
            f"{error.message}; the password came from {source.variable}",
            f"check {source.variable} (and the user name); nothing was saved",
        ) from error
    except RegistryError as error:
        raise RegistryError(
            f"cannot verify the login to {registry}: {error.message}",
            error.hint or "check that the registry is reachable from this job",
            status=error.status,
            code=error.code,
        ) from error


def login(
    source: LoginSource, config_dir: Path, options: BackendOptions, *, check: bool = True
) -> str:
    """Verify (unless `check` is off) and store; returns where it went (`auths` or a helper)."""
    if check:
        verify(source, options)
    where = credstore.store(config_dir, source.registry, source.username, source.password)
    logger.debug("stored the credential for %s in %s", source.registry, where)
    return where
