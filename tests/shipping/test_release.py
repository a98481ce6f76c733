"""scripts/release.py: the release tag, the package version and every pinned line agree; a bump
moves them together; the Action commit runs the published image by digest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import ci_env
from tests.support.tools import check_jsonschema

ROOT = Path(__file__).resolve().parents[2]
FILES = (
    "scripts/release.py",
    "ci_env/__init__.py",
    "action.yml",
    "CHANGELOG.md",
    "README.md",
    "gitlab-ci-template.yml",
    "templates",
)
DIGEST = "sha256:" + "ab" * 32


def release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(root / "scripts" / "release.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_this_checkout_is_releasable_as_its_version() -> None:
    result = release(ROOT, "check", f"v{ci_env.__version__}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"version={ci_env.__version__}\n"


def test_a_tag_that_is_not_the_version_is_refused() -> None:
    result = release(ROOT, "check", "v99.0.0")
    assert result.returncode == 1
    assert "the tag says 99.0.0" in result.stderr


def test_bump_moves_every_pinned_line(tree: Path) -> None:
    changelog = tree / "CHANGELOG.md"
    # What main has unreleased would become 9.8.7's notes: start from an empty Unreleased.
    text = changelog.read_text()
    start = text.index("## Unreleased\n") + len("## Unreleased\n")
    changelog.write_text(text[:start] + "\n" + text[text.index("\n## ", start) + 1 :])
    assert release(tree, "bump", "9.8.7").returncode == 0
    assert "no section" in release(tree, "check", "v9.8.7").stderr  # nothing written there yet
    changelog.write_text(changelog.read_text().replace("## 9.8.7\n", "## 9.8.7\n\n- Fixed.\n"))
    assert release(tree, "check", "v9.8.7").returncode == 0
    readme = (tree / "README.md").read_text()
    assert "ghcr.io/ci-env/ci-env:9.8.7" in readme
    assert "ci-env/ci-env@v9.8.7" in readme
    assert "cleanup@9.8.7" in (tree / "templates" / "cleanup" / "README.md").read_text()
    assert "## 9.8.7" in (tree / "CHANGELOG.md").read_text()


def test_pin_makes_the_action_run_the_published_image(tree: Path, tmp_path: Path) -> None:
    version = ci_env.__version__
    assert release(tree, "pin", version, DIGEST).returncode == 0
    action = yaml.safe_load((tree / "action.yml").read_text())
    assert action["runs"]["image"] == f"docker://ghcr.io/ci-env/ci-env:{version}@{DIGEST}"
    result = check_jsonschema("--builtin-schema", "vendor.github-actions", str(tree / "action.yml"))
    assert result.returncode == 0, result.stdout
    component = (tree / "templates" / "cleanup" / "template.yml").read_text()
    assert f"ghcr.io/ci-env/ci-env:{version}@{DIGEST}" in component
    assert release(tree, "pin", version, DIGEST).returncode == 1  # nothing left to pin


def test_notes_are_the_changelog_section() -> None:
    result = release(ROOT, "notes", ci_env.__version__)
    assert result.returncode == 0
    assert "### Added" in result.stdout
    assert "## " not in result.stdout.replace("### ", "")
