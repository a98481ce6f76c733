"""`ci-env logout [REGISTRY]`: forget one registry, or remove the whole per-job directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ci_env import credstore, dockerconfig, secrets, settings
from ci_env.commands.login import add_docker_config_argument
from ci_env.errors import UsageError

NAME = "logout"
HELP = "remove a registry's credentials, or the per-job Docker config directory"
DESCRIPTION = """\
With REGISTRY: remove that registry's credentials from the Docker config (--docker-config,
CIENV_DOCKER_CONFIG, WERF_DOCKER_CONFIG, DOCKER_CONFIG, else ~/.docker), from `auths` and from
the credential helper it names.
Without: remove the per-job directory they name (made by `ci-env env`); a directory without
ci-env's marker file is refused, so ~/.docker is never deleted by mistake.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", nargs="?", metavar="REGISTRY", help="host[:port]")
    add_docker_config_argument(parser)


def _say(message: str) -> None:
    print(secrets.redact(f"ci-env: {message}"), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    env = settings.environ()
    if args.registry:
        config_dir = dockerconfig.config_dir(args.docker_config, env)
        if credstore.remove(config_dir, args.registry):
            _say(f"removed the credentials for {args.registry} from {config_dir}")
        else:
            _say(f"no credentials for {args.registry} in {config_dir}")
        return 0
    chosen = dockerconfig.named_config_dir(args.docker_config, env)
    if not chosen:
        raise UsageError(
            "DOCKER_CONFIG is not set, so there is no per-job directory to remove",
            "run it in the job that ran `ci-env env`, pass --docker-config DIR, or name a "
            "REGISTRY to log out of",
        )
    if dockerconfig.remove_job_dir(Path(chosen)):
        _say(f"removed {chosen}")
    else:
        _say(f"{chosen} is already gone")
    return 0
