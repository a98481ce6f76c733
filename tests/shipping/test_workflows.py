"""The repository's own workflows and Action: GitHub's schemas (check-jsonschema), actionlint
and zizmor (offline: pinned actions, template injection, permissions, credentials) all pass,
plus the rules zizmor cannot see: every job states its permissions and every action and
service image is pinned, by commit SHA or digest.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import actionlint, tools
from tests.support.tools import unavailable

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_there_are_ci_and_release_workflows() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml"}


@pytest.mark.parametrize(
    ("schema", "paths"),
    [
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.github-actions", [ROOT / "action.yml"]),
        ("vendor.dependabot", [ROOT / ".github" / "dependabot.yml"]),
    ],
)
def test_github_schemas(schema: str, paths: list[Path]) -> None:
    result = tools.check_jsonschema("--builtin-schema", schema, *map(str, paths))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint() -> None:
    try:
        findings = actionlint.lint(WORKFLOWS)
    except actionlint.Unavailable as error:
        unavailable(str(error))
    assert findings == []


def test_zizmor_offline() -> None:
    # --offline: no GitHub API (no token, no network); .github/zizmor.yml is picked up.
    zizmor = tools.venv_script("zizmor")
    result = _run(zizmor, "--offline", "--no-progress", ".github/workflows", "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _jobs(path: Path) -> dict[str, dict[str, object]]:
    jobs: dict[str, dict[str, object]] = yaml.safe_load(path.read_text())["jobs"]
    return jobs


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_least_permissions(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {}, "the default token has no permission"
    for name, job in _jobs(path).items():
        assert "permissions" in job, f"job {name} does not say which permissions it needs"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_actions_and_images_are_pinned(path: Path) -> None:
    text = path.read_text()
    for action in re.findall(r"uses:\s*([^\s#]+)", text):
        if not action.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), action
    for image in re.findall(r"^[ \t]+image:[ \t]*(\S+)", text, re.M):
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), image
