"""`gitlab-ci-local` (npm) for running GitLab CI pipelines on this machine with the shell executor.

`ensure()` returns the binary, installing the pinned version when it is missing. Its `re2`
dependency is a native module whose install script first tries to download a prebuilt binary
(not reachable here) and then compiles with node-gyp, which needs the Node headers: Debian's
nodejs ships them under /usr/include/node, hence `npm_config_nodedir=/usr`. npm >= 11 runs
install scripts only when allowed, hence `--allow-scripts=re2`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

VERSION = "4.60"


class Unavailable(RuntimeError):
    """gitlab-ci-local cannot be installed here; the message says why (for pytest.skip)."""


def _works(binary: str) -> bool:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    return result.returncode == 0 and result.stdout.strip().startswith(VERSION)


def ensure() -> str:
    binary = shutil.which("gitlab-ci-local")
    if binary and _works(binary):
        return binary
    npm = shutil.which("npm")
    if not npm:
        raise Unavailable("npm is not installed (apt-get install npm)")
    env = {**os.environ, "npm_config_nodedir": "/usr"}
    command = [npm, "install", "--global", "--allow-scripts=re2", f"gitlab-ci-local@{VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    binary = shutil.which("gitlab-ci-local")
    if result.returncode != 0 or not binary or not _works(binary):
        raise Unavailable(f"npm install gitlab-ci-local@{VERSION} failed: {result.stderr[-1500:]}")
    return binary


def run(
    binary: str, project: Path, jobs: list[str], variables: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run `jobs` of the pipeline in `project` (a git checkout) with the shell executor.

    Variables go through a variables file, not argv, since some are credentials.
    """
    # Beside the project, not in it: gitlab-ci-local copies the project into its build dirs.
    variables_file = project.parent / f"{project.name}-variables.yml"
    lines = [f"{key}: {_yaml_string(value)}" for key, value in variables.items()]
    variables_file.write_text("\n".join(lines) + "\n")
    variables_file.chmod(0o600)
    command = [
        binary,
        "--force-shell-executor",
        "--variables-file",
        f"../{variables_file.name}",  # it accepts relative paths only
        "--no-color",
        *jobs,
    ]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=timeout, check=False
    )


def _yaml_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
