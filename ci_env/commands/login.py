"""`ci-env login REGISTRY`: verify a credential and store it in the Docker config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci_env import credstore, logins, providers, secrets, settings
from ci_env.errors import UsageError
from ci_env.options import BackendOptions
from ci_env.providers.base import LoginSource

NAME = "login"
HELP = "log in to a registry (verified before it is saved)"
DESCRIPTION = """\
Log in to REGISTRY and save the credential in the Docker config (--docker-config,
CIENV_DOCKER_CONFIG, WERF_DOCKER_CONFIG, DOCKER_CONFIG, else ~/.docker), in the credential
helper the config names or in `auths`. The registry must accept the credential first; nothing
is saved otherwise. Where the password comes from, in order:
  --password-stdin (with --username)  never pass a password as an argument
  an ECR host                         a token from AWS with the ambient AWS credentials
  the CI's variables                  GITHUB_TOKEN, CI_REGISTRY_PASSWORD, CI_JOB_TOKEN, ...
  CIENV_REGISTRY_USERNAME / CIENV_REGISTRY_PASSWORD
Concurrent logins to one config are safe (file lock + atomic rename).

examples:
  printf '%s' "$TOKEN" | ci-env login ghcr.io -u octocat --password-stdin
  ci-env login 123456789012.dkr.ecr.eu-west-1.amazonaws.com
"""


def add_docker_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docker-config",
        metavar="DIR",
        help="Docker config directory (default: CIENV_DOCKER_CONFIG, WERF_DOCKER_CONFIG, "
        "DOCKER_CONFIG, ~/.docker)",
    )


def add_insecure_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain http to HOST (loopback always is); repeatable; also "
        "CIENV_INSECURE_REGISTRIES=host1,host2",
    )


# A login check is one or two requests: fail within a minute rather than retry for long.
LOGIN_DEFAULTS = BackendOptions(timeout=20.0, max_attempts=3, max_retry_seconds=60.0)


@dataclass(frozen=True)
class Settings:
    """One login, resolved from the options and the environment before anything is sent."""

    registry: str
    source: LoginSource = field(repr=False)  # holds the password
    config_dir: Path
    options: BackendOptions
    verify: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", metavar="REGISTRY", help="host[:port], e.g. ghcr.io")
    parser.add_argument("-u", "--username", help="user name (with --password-stdin)")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password or token from stdin"
    )
    add_docker_config_argument(parser)
    add_insecure_argument(parser)
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="save without checking the credential against the registry",
    )


def _from_stdin(registry: str, username: str | None) -> LoginSource:
    if not username:
        raise UsageError(
            "--password-stdin needs --username", "pass the user name with -u/--username"
        )
    # As `docker login`: the trailing newline of `echo "$TOKEN" |` is not part of the password.
    password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    secrets.register(password)
    if not password:
        raise UsageError("no password on stdin", "pipe the password or token into ci-env login")
    return LoginSource(registry, username, password, "stdin")


def _from_variables(registry: str, env: Mapping[str, str]) -> LoginSource | None:
    host = credstore.host_of(registry)
    if not env.get("CIENV_REGISTRY"):
        # CIENV_REGISTRY_USERNAME/PASSWORD alone apply to the registry being logged in to.
        env = {**env, "CIENV_REGISTRY": registry} if _has_cienv_credentials(env) else env
    for source in providers.select("auto", env).login_sources():
        if credstore.host_of(source.registry) == host:
            return LoginSource(registry, source.username, source.password, source.variable)
    return None


def _has_cienv_credentials(env: Mapping[str, str]) -> bool:
    return bool(env.get("CIENV_REGISTRY_USERNAME") or env.get("CIENV_REGISTRY_PASSWORD"))


def resolve_source(args: argparse.Namespace, env: Mapping[str, str]) -> LoginSource:
    registry: str = args.registry
    if args.password_stdin:
        return _from_stdin(registry, args.username)
    if args.username:
        raise UsageError(
            "--username needs --password-stdin (a password is never taken as an argument)",
            f"printf '%s' \"$TOKEN\" | ci-env login {registry} -u {args.username} --password-stdin",
        )
    if logins.is_ecr(registry):
        return logins.ecr_source(registry)
    source = _from_variables(registry, env)
    if source is None:
        raise UsageError(
            f"no credentials for {registry}",
            "pipe one in with --username and --password-stdin, or set "
            "CIENV_REGISTRY_USERNAME and CIENV_REGISTRY_PASSWORD",
        )
    return source


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """The login's settings: the registry, the credential, where it goes, how to check it."""
    if not credstore.host_of(args.registry):
        raise UsageError(f"{args.registry!r} is not a registry", "pass host[:port], e.g. ghcr.io")
    source = resolve_source(args, env)
    # Imported here: `ci-env env`, which shares this module's options, starts without the
    # registry layer (requests, ~0.2 s) unless it logs in.
    from ci_env import backend_options as backend_layer  # noqa: PLC0415

    config_dir = Path(backend_layer.docker_config_dir(args, env))
    options = backend_layer.backend_options(args, env, defaults=LOGIN_DEFAULTS)
    return Settings(args.registry, source, config_dir, options, verify=not args.no_verify)


def run(args: argparse.Namespace) -> int:
    s = resolve(args, settings.environ())
    where = logins.login(s.source, s.config_dir, s.options, check=s.verify)
    print(
        f"logged in to {s.registry} as {s.source.username} "
        f"(credential from {s.source.variable}, saved in {s.config_dir} {where})",
        file=sys.stderr,
    )
    return 0
