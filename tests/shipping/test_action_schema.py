"""action.yml: valid against GitHub's published schema, and consistent with entrypoint.py."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import entrypoint
from tests.support.tools import check_jsonschema

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
# Inputs entrypoint.py reads itself rather than through its OPTIONS table.
SPECIAL = {
    "command", "registry", "password", "login", "github-token", "extra-args", "verbose",
    "registry-auth",
}  # fmt: skip


def _action() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = yaml.safe_load(ACTION.read_text())
    return data


def test_action_matches_github_actions_schema() -> None:
    result = check_jsonschema("--builtin-schema", "vendor.github-actions", str(ACTION))
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_workflow_examples_match_github_workflows_schema(tmp_path: Path) -> None:
    docs = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(# \.github/workflows/.*?)```", docs, re.S)
    assert blocks, "README.md has no ```yaml block starting with '# .github/workflows/'"
    for number, block in enumerate(blocks):
        example = tmp_path / f"workflow-{number}.yml"
        example.write_text(block)
        result = check_jsonschema("--builtin-schema", "vendor.github-workflows", str(example))
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_input_reaches_the_cli() -> None:
    mapped = {name for table in entrypoint.OPTIONS.values() for name in table}
    assert set(_action()["inputs"]) - mapped - SPECIAL == set()
    assert mapped - set(_action()["inputs"]) == set()


def test_no_input_is_named_args_or_entrypoint() -> None:
    # The runner passes inputs with these names to `docker run` itself.
    assert not {"args", "entrypoint"} & {name.lower() for name in _action()["inputs"]}


def test_outputs_are_declared_and_image_has_the_post_step() -> None:
    action = _action()
    outputs = {"docker-config", "deleted", "kept", "failed", "report"}
    outputs |= {"deleted-tags", "failed-tags"}
    assert set(action["outputs"]) == outputs
    runs = action["runs"]
    assert runs["using"] == "docker"
    assert runs["post-entrypoint"] == "/app/post_entrypoint.py"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "/src/post_entrypoint.py /app/" in dockerfile


def test_secret_inputs_have_no_logged_default() -> None:
    inputs = _action()["inputs"]
    assert "default" not in inputs["password"]
    assert inputs["github-token"]["default"] == "${{ github.token }}"
