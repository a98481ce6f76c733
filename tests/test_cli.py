"""The CLI imports only the command it runs: `ci-env --version` and `ci-env env --no-login`
start without the registry layer (requests, every backend), which costs ~0.2 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_env import cli

ROOT = Path(__file__).resolve().parents[1]

_IMPORTED = """
import json, sys
from ci_env import cli
code = 0
try:
    code = cli.main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in ("requests", "ci_env.registries", "ci_env.cleanup") if m in sys.modules)
print(json.dumps(heavy), file=sys.stderr)
"""


def imported(tmp_path: Path, *argv: str) -> list[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("argv", [("--version",), ("env", "--no-login"), ("gc", "--help")])
def test_a_light_command_never_imports_the_registry_layer(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    assert imported(tmp_path, *argv) == []


def test_cleanup_imports_every_backend(tmp_path: Path) -> None:
    assert "ci_env.registries" in imported(tmp_path, "cleanup", "--help")


@pytest.mark.parametrize(
    ("argv", "chosen"),
    [
        (["env", "--no-login"], "env"),
        (["-v", "cleanup", "--repo", "x"], "cleanup"),
        (["--version"], ""),
        ([], ""),
        (["--help"], None),
        (["-h", "env"], None),
        (["nosuch"], None),
    ],
)
def test_the_chosen_command(argv: list[str], chosen: str | None) -> None:
    assert cli._chosen(argv) == chosen


def test_top_level_help_lists_every_command_with_its_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"    {name} " in out


def test_an_unknown_command_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["nosuch"])
    assert done.value.code == 2
    assert "cleanup" in capsys.readouterr().err
