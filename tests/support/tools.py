"""The command-line tools the suite installed itself, found where it installed them.

`make test` puts the Python tools (check-jsonschema, ...) into the suite's own virtual
environment; they are looked up beside the running interpreter, never on PATH, so a global
install can neither stand in for them nor hide that one is missing.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path
from typing import NoReturn

import pytest


class MissingTool(RuntimeError):
    """A tool the test extra should have installed is not in this environment."""


def venv_script(name: str) -> str:
    script = Path(sysconfig.get_path("scripts")) / name
    if not script.is_file():
        raise MissingTool(
            f"{name} is not in {script.parent}: run `make test` (pip install -e '.[test]')"
        )
    return str(script)


def check_jsonschema(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [venv_script("check-jsonschema"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose tool cannot run here; under CI (where `make test` installs every tool)
    fail instead, so a missing install step can never pass as a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"under CI every tool must be installed by make test: {reason}")
    pytest.skip(reason)
