"""Wheels built the way a release builds them, with no package index at test time.

`checkout_wheel()` builds ci-env's own wheel from a copy of this checkout (so no build/ or
egg-info lands in the work tree), with its build backend taken from the cached wheel folder of
requirements.lock (`dockerd.wheels`): a job can then `pip install --no-index` the pinned wheel
and its locked dependencies, as a user's job installs a pinned release.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.dockerd import wheels

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
SOURCE = ["ci_env", "pyproject.toml", "README.md"]


def lock_wheels() -> Path:
    return wheels(LOCK)


def checkout_wheel(dest: Path) -> Path:
    """Build ci-env's wheel from this checkout into `dest`; return its path."""
    with tempfile.TemporaryDirectory(prefix="ci-env-src-") as tmp:
        source = Path(tmp)
        for name in SOURCE:
            copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
            copy(ROOT / name, source / name)
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"]
        command += ["--find-links", str(lock_wheels()), "--wheel-dir", str(dest), str(source)]
        subprocess.run(command, check=True, timeout=300)
    (wheel,) = dest.glob("ci_env-*.whl")
    return wheel


def installed_venv(dest: Path) -> Path:
    """A fresh venv (no system packages) at `dest` with the checkout's wheel and only the base
    dependencies, installed with no index; returns its bin directory."""
    wheel = checkout_wheel(dest / "dist")
    venv = dest / "venv"
    # --without-pip, then this pip installs into it: ensurepip would double the time.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    offline = ["--quiet", "--no-index", "--find-links", str(lock_wheels())]
    target = ["--python", str(venv / "bin" / "python")]
    env = {**os.environ, "PIP_CONSTRAINT": ""}  # the machine's pip constraints are not ours
    command = [sys.executable, "-m", "pip", *target, "install", *offline, str(wheel)]
    subprocess.run(command, check=True, timeout=300, env=env)
    return venv / "bin"
