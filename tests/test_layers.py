"""The import layers: a module imports only its own layer and the layers below it.

Read with `ast` (every import, inside functions and TYPE_CHECKING blocks too), so a lazy
import that climbs a layer fails here as well. Top to bottom; a module no layer names is a leaf
(errors, secrets, reference, oci, options, ...) and may import only other leaves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ci_env"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ci_env.__main__", "ci_env.cli"),
    ("ci_env.commands",),
    ("ci_env.reports",),
    ("ci_env.cleanup", "ci_env.logins", "ci_env.backend_options", "ci_env.formats"),
    ("ci_env.registries", "ci_env.inuse", "ci_env.providers"),
    ("ci_env.registry",),
)
LEAF = len(LAYERS)


def layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return LEAF


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every ci_env module `path` imports (`from ci_env import x` names module ci_env.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "ci_env" or name.startswith("ci_env.")}


def upward_imports(module: str, names: set[str]) -> list[str]:
    """`names` that sit in a higher layer than `module` (a lower rank number)."""
    own = layer(module)
    return sorted(name for name in names if name != "ci_env" and layer(name) < own)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    module = module_name(path)
    assert upward_imports(module, imported(path)) == []


def test_the_layer_check_can_fail() -> None:
    """The HTTP layer importing a backend module is what this file exists to catch."""
    assert upward_imports("ci_env.registry.client", {"ci_env.registries.base"}) == [
        "ci_env.registries.base"
    ]
    assert upward_imports("ci_env.oci", {"ci_env.registry.responses"}) == [
        "ci_env.registry.responses"
    ]
    assert upward_imports("ci_env.registries.base", {"ci_env.oci", "ci_env.options"}) == []
