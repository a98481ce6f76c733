"""Run the real `ci-env` CLI in a subprocess with a controlled environment (for command tests).

The environment is built from scratch (PATH and the Python path only), so a developer's or the
CI machine's DOCKER_CONFIG, HOME, GITHUB_* or CI_* variables never leak into a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = 60,
    umask: int = -1,  # subprocess's "leave it as it is"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_env", *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
        umask=umask,
    )
