#!/usr/bin/env python3
"""Post step of the GitHub Action: remove the per-job Docker config at job end.

The runner runs it after the job's steps, also when one of them failed (`post-if: always()`).
`entrypoint.py` saved the config's container path as state (`STATE_CIENV_DOCKER_CONFIG`);
`ci-env logout` removes that directory only when it carries ci-env's marker, so a step that
created nothing, or a path that is not ours, leaves the disk untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys

STATE = "STATE_CIENV_DOCKER_CONFIG"


def main() -> int:
    directory = os.environ.get(STATE, "").strip()
    if not directory or not os.path.isdir(directory):
        return 0  # this step created no per-job config (or it is already gone)
    env = {**os.environ, "DOCKER_CONFIG": directory, "CIENV_DOCKER_CONFIG": directory}
    return subprocess.call([sys.executable, "-m", "ci_env", "logout"], env=env)


if __name__ == "__main__":
    sys.exit(main())
