"""`ci-env login REGISTRY`: verify a credential and store it in the Docker config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from ci_env import credstore, logins, providers, secrets, settings
from ci_env.errors import UsageError
from ci_env.options import BackendOptions
from ci_env.providers.base import LoginSource

NAME = "login"
HELP = "log in to a registry (verified before it is saved)"
DESCRIPTION = """\
Log in to REGISTRY and save the credential in the Docker config ($DOCKER_CONFIG, else
~/.docker), in the credential helper the config names or in `auths`. The registry must accept
the credential first; nothing is saved otherwise. Where the password comes from, in order:
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
        help="Docker config directory (default: $DOCKER_CONFIG, else ~/.docker)",
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


def docker_config_dir(explicit: str | None, env: Mapping[str, str]) -> Path:
    """Where `docker login` would write: --docker-config, $DOCKER_CONFIG, ~/.docker."""
    chosen = explicit or env.get("DOCKER_CONFIG")
    if chosen:
        return Path(chosen)
    return Path(env.get("HOME") or Path.home()) / ".docker"


def backend_options(
    config_dir: Path, insecure: list[str], env: Mapping[str, str]
) -> BackendOptions:
    listed = settings.cienv("INSECURE_REGISTRIES", env=env) or ""
    hosts = {h.strip() for h in [*insecure, *listed.split(",")] if h.strip()}
    # A login check is one or two requests: fail within a minute rather than retry for long.
    return BackendOptions(
        docker_config=str(config_dir),
        insecure_registries=frozenset(hosts),
        timeout=20.0,
        max_attempts=3,
        max_retry_seconds=60.0,
    )


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


def run(args: argparse.Namespace) -> int:
    env = settings.environ()
    if not credstore.host_of(args.registry):
        raise UsageError(f"{args.registry!r} is not a registry", "pass host[:port], e.g. ghcr.io")
    source = resolve_source(args, env)
    config_dir = docker_config_dir(args.docker_config, env)
    options = backend_options(config_dir, args.insecure_registry, env)
    where = logins.login(source, config_dir, options, check=not args.no_verify)
    print(
        f"logged in to {args.registry} as {source.username} "
        f"(credential from {source.variable}, saved in {config_dir} {where})",
        file=sys.stderr,
    )
    return 0
