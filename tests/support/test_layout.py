"""Tests and benchmarks share helpers only through `tests/support/` and `tests/fakes/`: a test
module importing another test module (or its scenario tables) runs that module's fixtures and
tests' import side effects, and breaks when the other test file is renamed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("support", "fakes")  # the packages under tests/ meant to be imported


def foreign_imports(source: str) -> list[str]:
    """The `tests.*` modules `source` imports from outside the shared packages."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _foreign(alias.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x` reaches a sibling module
                found.append("." * node.level + (node.module or ""))
            elif node.module == "tests":
                found += [f"tests.{a.name}" for a in node.names if a.name not in SHARED]
            elif node.module and _foreign(node.module.split(".")):
                found.append(node.module)
    return found


def _foreign(parts: list[str]) -> bool:
    return parts[0] == "tests" and (len(parts) == 1 or parts[1] not in SHARED)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from tests.registries.test_ecr import HOST", ["tests.registries.test_ecr"]),
        ("import tests.reliability.scenarios", ["tests.reliability.scenarios"]),
        ("from tests import reliability", ["tests.reliability"]),
        ("def f():\n    from tests.commands import clirun", ["tests.commands"]),
        ("from .harness import run_cli", [".harness"]),
        ("from tests.support import images\nfrom tests.fakes._router import Call", []),
        ("from tests import support\nimport requests", []),
    ],
)
def test_foreign_imports_are_found(source: str, expected: list[str]) -> None:
    assert foreign_imports(source) == expected


def test_tests_and_benchmarks_import_only_shared_helpers() -> None:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")])
    assert len(files) > 100  # the walk found the suite
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (found := foreign_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "move what they share to tests/support/"
