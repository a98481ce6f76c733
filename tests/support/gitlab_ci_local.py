"""`gitlab-ci-local` (npm) for running GitLab CI pipelines on this machine with the shell executor.

`ensure()` returns the binary, installing the pinned version into the suite's own npm prefix
(under the test cache, beside the debootstrapped base image) when it is missing there; a
global install is never looked at, so it can neither stand in for the pinned one nor be
clobbered. Its `re2` dependency is a native module whose install script first tries to
download a prebuilt binary (not reachable here) and then compiles with node-gyp (~6 minutes on
2 cores, once per cache), which needs the Node headers: Debian's nodejs ships them under
/usr/include/node, hence `npm_config_nodedir=/usr`. npm >= 11 asks for install scripts to be
allowed, in a project install through package.json's `allowScripts` (the flag is refused there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.support.dockerd import CACHE_DIR

VERSION = "4.60"
PREFIX = CACHE_DIR / f"npm-gitlab-ci-local-{VERSION}"
BINARY = PREFIX / "node_modules" / ".bin" / "gitlab-ci-local"


class Unavailable(RuntimeError):
    """gitlab-ci-local cannot be installed here; the message says why (for pytest.skip)."""


def _works(binary: Path) -> bool:
    if not binary.exists():
        return False
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    return result.returncode == 0 and result.stdout.strip().startswith(VERSION)


def ensure() -> str:
    if _works(BINARY):
        return str(BINARY)
    npm = shutil.which("npm")
    if not npm:
        raise Unavailable("npm is not installed (apt-get install npm)")
    PREFIX.mkdir(parents=True, exist_ok=True)
    manifest = {"private": True, "allowScripts": {"re2": True}}
    (PREFIX / "package.json").write_text(json.dumps(manifest) + "\n")
    env = {**os.environ, "npm_config_nodedir": "/usr"}
    command = [npm, "install", "--prefix", str(PREFIX), "--no-save", f"gitlab-ci-local@{VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    if result.returncode != 0 or not _works(BINARY):
        raise Unavailable(f"npm install gitlab-ci-local@{VERSION} failed: {result.stderr[-1500:]}")
    return str(BINARY)


def run(
    binary: str,
    project: Path,
    jobs: list[str],
    variables: dict[str, str],
    timeout: float = 240,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `jobs` of the pipeline in `project` (a git checkout) with the shell executor.

    Variables go through a variables file, not argv, since some are credentials. The jobs'
    shells inherit `env` (default: this process's environment).
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
        command,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else dict(env),
    )


def _yaml_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
