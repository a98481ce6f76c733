"""The `ci-env` command line: one parser, one module per sub-command, one `except`.

Each module in `ci_env/commands/` exposes `NAME`, `HELP`, `DESCRIPTION`,
`add_arguments(parser)` and `run(args) -> int`. Every `CiEnvError` ends here: printed as
`error: <what> — <what to do>` (secrets masked) with its exit code. argparse's own usage
errors also exit 2. Nothing else is caught, so a bug shows as a bug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from ci_env import __version__, secrets, untrusted
from ci_env.errors import CiEnvError

COMMANDS = ("env", "login", "logout", "gc", "detect", "probe", "cleanup")


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"ci_env.commands.{name}")


def _chosen(argv: Sequence[str] | None) -> str | None:
    """The sub-command `argv` names, or None where every command's parser is needed (`--help`
    before any command, which lists them all with their help)."""
    for arg in sys.argv[1:] if argv is None else argv:
        if arg in ("-h", "--help"):
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return ""  # no command (`--version`, or the missing-command error): none is imported


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the command it names is imported (start-up: `ci-env env`
    need not import the registry layer), the others are names only."""
    parser = argparse.ArgumentParser(
        prog="ci-env",
        description=(
            "Per-job Docker credentials, registry login from CI variables, and registry "
            "cleanup that never deletes what a kept tag needs."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ci-env {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log requests and decisions to stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(argv) if argv is not None else None
    for name in COMMANDS:
        if chosen is not None and name != chosen:
            sub.add_parser(name)  # never parsed: argv names another command
            continue
        module = _command(name)
        command = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


class _GuardedFormatter(logging.Formatter):
    """Log lines quote registry answers: no line of them may act as a workflow command."""

    def format(self, record: logging.LogRecord) -> str:
        return untrusted.guard(super().format(record))


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(secrets.RedactingFilter())
    handler.setFormatter(_GuardedFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # botocore's DEBUG dumps signed headers (X-Amz-Security-Token) and response bodies (ECR's
    # authorization token) before ci-env can register them as secrets: never that deep.
    logging.getLogger("botocore").setLevel(logging.INFO)
    if not verbose:
        # urllib3 and botocore log connection retries as warnings; our own messages suffice.
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        # The chosen command's modules (for cleanup, every backend): a broken one is an error here.
        parser = build_parser(sys.argv[1:] if argv is None else argv)
    except CiEnvError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    args = parser.parse_args(argv)
    untrusted.configure(github_actions=os.environ.get("GITHUB_ACTIONS") == "true")
    _setup_logging(args.verbose)
    try:
        code: int = args.run(args)
    except CiEnvError as error:
        print(untrusted.guard(secrets.redact(error.render())), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
