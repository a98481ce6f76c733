"""`ci-env gc`: remove per-job Docker config directories left behind by crashed jobs."""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from ci_env import dockerconfig, durations, settings
from ci_env.commands.env import tmp_root

NAME = "gc"
HELP = "remove per-job Docker config directories older than --older-than"
DESCRIPTION = """\
Remove directories made by `ci-env env` (recognised by their marker file) that are older than
--older-than, from --tmp-dir / CIENV_TMP_DIR / RUNNER_TEMP / the system temp dir. Run it on a
schedule on shell runners; a job that ends normally removes its own with `ci-env logout`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--older-than",
        default="6h",
        metavar="DURATION",
        help="minimum age, e.g. 30m, 6h, 2d (default 6h, as werf host cleanup)",
    )
    parser.add_argument("--tmp-dir", metavar="DIR", help="where the job directories are")
    parser.add_argument("--dry-run", action="store_true", help="list, do not remove")


def run(args: argparse.Namespace) -> int:
    env = settings.environ()
    older_than = durations.parse(args.older_than, what="--older-than").total_seconds()
    root = tmp_root(args.tmp_dir, env)
    stale = dockerconfig.collect(root, older_than, time.time())
    verb = "would remove" if args.dry_run else "removed"
    for job in stale:
        if not args.dry_run:
            shutil.rmtree(job.path, ignore_errors=True)
        print(f"{verb} {job.path} (age {job.age / 3600:.1f}h)")
    print(
        f"ci-env: {verb} {len(stale)} job director{'y' if len(stale) == 1 else 'ies'} in {root}",
        file=sys.stderr,
    )
    return 0
