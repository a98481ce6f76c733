"""`ci-env env [auto|github|gitlab|generic]`: a per-job Docker config, logged in, as variables."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci_env import credstore, dockerconfig, formats, logins, providers, secrets, settings
from ci_env.commands.login import LOGIN_DEFAULTS, add_insecure_argument
from ci_env.errors import CiEnvError, UsageError
from ci_env.formats import Format
from ci_env.options import BackendOptions
from ci_env.providers.base import LoginSource, Provider


def _login_options(args: argparse.Namespace, env: Mapping[str, str]) -> BackendOptions:
    # Imported here: the registry layer (requests) costs ~0.2 s that `env --no-login` never needs.
    from ci_env import backend_options  # noqa: PLC0415

    return backend_options.backend_options(args, env, defaults=LOGIN_DEFAULTS)


NAME = "env"
HELP = "make a per-job Docker config, log in from CI variables, print the job's variables"
DESCRIPTION = """\
Create a fresh Docker config directory for this job (0700, under --tmp-dir, CIENV_TMP_DIR,
RUNNER_TEMP or the system temp dir), copy the source config into it (--docker-config,
CIENV_DOCKER_CONFIG, DOCKER_CONFIG, ~/.docker; sockets and Docker's plug-in/state folders are
skipped), log in to the CI's registries (verified first), and print the variables the job
needs: DOCKER_CONFIG, CIENV_DOCKER_CONFIG, CIENV_REPO, CIENV_REPO_CONTAINER_REGISTRY, CIENV_ENV.
Variables already set are kept (a `# skip` comment says so), except the Docker config ones.
werf's WERF_DOCKER_CONFIG, WERF_REPO, WERF_REPO_CONTAINER_REGISTRY, WERF_TMP_DIR work too.

examples:
  eval "$(ci-env env)"                     # any POSIX shell
  . "$(ci-env env --as-file)"              # same, through a 0600 file
  ci-env env github --format github        # append to $GITHUB_ENV
  ci-env env gitlab --format dotenv -o build.env   # GitLab artifacts:reports:dotenv
  ci-env logout                            # at job end: remove the directory
"""

_SUFFIX = {
    Format.SHELL: ".sh",
    Format.POWERSHELL: ".ps1",
    Format.ENV_FILE: ".env",
    Format.DOTENV: ".env",
    Format.GITHUB: ".github-env",
    Format.JSON: ".json",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "provider",
        nargs="?",
        default="auto",
        choices=providers.CHOICES,
        help="CI system (default auto: GITHUB_ACTIONS=true -> github, GITLAB_CI=true -> gitlab)",
    )
    parser.add_argument("--tmp-dir", metavar="DIR", help="where to create the job directory")
    parser.add_argument("--docker-config", metavar="DIR", help="source Docker config to copy")
    parser.add_argument(
        "--use-docker-auth-config",
        action="store_true",
        help="build config.json from $DOCKER_AUTH_CONFIG (a JSON object) instead of copying",
    )
    parser.add_argument(
        "--no-login", dest="login", action="store_false", help="do not log in to registries"
    )
    parser.add_argument(
        "--format",
        default=Format.SHELL.value,
        choices=[f.value for f in Format],
        help="output format (default shell; github appends to $GITHUB_ENV)",
    )
    parser.add_argument(
        "--as-file", action="store_true", help="write the output to a 0600 file, print its path"
    )
    parser.add_argument("-o", "--output", metavar="PATH", help="file to write the output to")
    add_insecure_argument(parser)


def _say(message: str) -> None:
    print(secrets.redact(f"ci-env: {message}"), file=sys.stderr)


def tmp_root(explicit: str | None, env: Mapping[str, str]) -> str:
    """--tmp-dir, CIENV_TMP_DIR, WERF_TMP_DIR, RUNNER_TEMP, the system temp dir."""
    chosen = explicit or settings.cienv("TMP_DIR", "RUNNER_TEMP", env=env)
    return chosen or tempfile.gettempdir()


def docker_auth_config(env: Mapping[str, str]) -> dict[str, Any]:
    """`$DOCKER_AUTH_CONFIG` as a config.json object (GitLab runners use the same variable)."""
    raw = env.get("DOCKER_AUTH_CONFIG")
    hint = 'set DOCKER_AUTH_CONFIG to a Docker config JSON object, e.g. {"auths": {...}}'
    if not raw:
        raise UsageError("--use-docker-auth-config: DOCKER_AUTH_CONFIG is not set", hint)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # The parser's message quotes the text around the error, which may be a credential.
        raise UsageError("DOCKER_AUTH_CONFIG is not valid JSON", hint) from None
    if not isinstance(data, dict):
        raise UsageError("DOCKER_AUTH_CONFIG is not a JSON object", hint)
    return data


@dataclass(frozen=True)
class Settings:
    """One `ci-env env` run: the options and the environment, resolved at its start."""

    provider: Provider
    tmp_root: str
    source_dir: str  # the Docker config to copy (`dockerconfig.config_dir`)
    # DOCKER_AUTH_CONFIG, with --use-docker-auth-config (credentials: kept out of repr)
    auth_config: dict[str, Any] | None = field(repr=False)
    login: bool
    options: BackendOptions  # for the logins; their docker_config is the job directory
    format: Format
    as_file: bool
    output: str | None
    github_env: str | None
    # The job's variables now (those already set are skipped); secrets among them: no repr.
    existing: Mapping[str, str] = field(repr=False)


def resolve(args: argparse.Namespace, env: Mapping[str, str], provider: Provider) -> Settings:
    auth_config = docker_auth_config(env) if args.use_docker_auth_config else None
    login = bool(args.login)
    options = _login_options(args, env) if login else None
    return Settings(
        provider=provider,
        tmp_root=tmp_root(args.tmp_dir, env),
        source_dir=str(dockerconfig.config_dir(args.docker_config, env)),
        auth_config=auth_config,
        login=login,
        options=options or LOGIN_DEFAULTS,
        format=Format(args.format),
        as_file=bool(args.as_file),
        output=args.output,
        github_env=env.get("GITHUB_ENV"),
        existing=settings.snapshot(env),
    )


def _login_all(s: Settings, sources: list[LoginSource], job: Path) -> None:
    provider = s.provider
    if not sources:
        _say(
            f"no registry credentials in the {provider.name} variables "
            f"({provider.login_variables}); not logging in"
        )
        return
    options = replace(s.options, docker_config=str(job))
    provider.section_start("ci_env_login", "ci-env: logging in to registries", sys.stderr)
    try:
        for source in sources:
            where = logins.login(source, job, options)
            _say(
                f"logged in to {source.registry} as {source.username} ({source.variable}, {where})"
            )
    finally:
        provider.section_end("ci_env_login", sys.stderr)


def _prepare(s: Settings) -> Path:
    """The job directory, filled and logged in; removed again if anything fails."""
    sources = s.provider.login_sources() if s.login else []
    for source in sources:
        s.provider.mask(source.password, sys.stderr)
    job = dockerconfig.create_job_dir(s.tmp_root)
    try:
        if s.auth_config is not None:
            credstore.write_config(job, s.auth_config)
        elif not dockerconfig.copy_source(s.source_dir, job):
            _say("no source Docker config found; starting from an empty one")
        if s.login:
            _login_all(s, sources, job)
    except BaseException:
        dockerconfig.remove_job_dir(job)  # nothing half-made is left behind
        raise
    return job


def _write_file(path: Path, text: str, *, append: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if not append:
            os.fchmod(out.fileno(), 0o600)  # an existing file keeps its mode otherwise
        out.write(text)


def _emit(s: Settings, job: Path, text: str) -> None:
    if s.format is Format.GITHUB and not s.output:
        if not s.github_env:
            raise UsageError(
                "--format github needs $GITHUB_ENV", "run it in a GitHub Actions step, or add -o"
            )
        _write_file(Path(s.github_env), text, append=True)
        _say("variables appended to $GITHUB_ENV")
        return
    if s.as_file or s.output:
        path = Path(s.output or job / f"ci-env{_SUFFIX[s.format]}")
        _write_file(path, text)
        if s.as_file:
            print(path)
        return
    sys.stdout.write(text)


def run(args: argparse.Namespace) -> int:
    env = settings.environ()
    # The provider keeps its mapping for later (login sources, variables): a copy taken now.
    provider = providers.select(args.provider, settings.snapshot(env))
    to_stdout = not (args.as_file or args.output) and args.format in ("shell", "powershell")
    try:
        s = resolve(args, env, provider)
        job = _prepare(s)
        entries = formats.select(provider.variables(str(job)), s.existing)
        try:
            _emit(s, job, formats.render(s.format, entries))
        except BaseException:
            dockerconfig.remove_job_dir(job)
            raise
    except CiEnvError as error:
        if provider.name == "github":
            # An annotation marks the failure in the run's page; the CLI prints the plain line.
            provider.error(secrets.redact(error.render()), sys.stderr)
        if to_stdout:
            # The output is usually eval'd: make the sourcing script stop too (as werf does).
            print("exit 1")
        raise
    _say(f"per-job Docker config: {job}")
    return 0
