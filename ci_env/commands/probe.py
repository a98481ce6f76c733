"""`ci-env probe` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from ci_env.errors import CiEnvError

NAME = "probe"
HELP = "not implemented yet"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise CiEnvError(f"'ci-env {NAME}' is not implemented yet")
