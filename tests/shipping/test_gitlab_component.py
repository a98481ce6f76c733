"""The GitLab CI/CD components under templates/: each header's `spec: inputs:` typed, described
and defaulted, the job GitLab's schema accepts once the inputs are interpolated, and the
cleanup component run for real by gitlab-ci-local, included the way GitLab documents for a
component's own project (`component: $CI_SERVER_FQDN/<project path>/cleanup@$CI_COMMIT_SHA`:
gitlab-ci-local then reads templates/cleanup/template.yml from the checkout), with
`parallel: 2` shards that together clean every repository.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.support import gitlab_ci_local
from tests.support.images import list_tags, push_image
from tests.support.registry import LocalRegistry
from tests.support.tools import check_jsonschema, unavailable

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = sorted((ROOT / "templates").glob("*/template.yml"))
INPUT = re.compile(r"\$\[\[\s*inputs\.(\w+)\s*\]\]")
TYPES = {"string", "boolean", "number", "array"}


def split(path: Path) -> tuple[dict[str, dict[str, dict[str, object]]], str]:
    header, _, body = path.read_text().partition("\n---\n")
    return yaml.safe_load(header), body


def render(path: Path, given: dict[str, object] | None = None) -> str:
    """The body with each `$[[ inputs.NAME ]]` replaced, as GitLab interpolates it."""
    header, body = split(path)
    values = {name: spec.get("default") for name, spec in header["spec"]["inputs"].items()}
    values.update(given or {})

    def value(match: re.Match[str]) -> str:
        item = values[match.group(1)]
        return str(item).lower() if isinstance(item, bool) else str(item)

    return INPUT.sub(value, body)


def test_there_are_the_env_and_cleanup_components_each_with_a_readme() -> None:
    assert {path.parent.name for path in COMPONENTS} == {"env", "cleanup"}
    for path in COMPONENTS:
        assert (path.parent / "README.md").is_file(), f"{path.parent.name} has no README.md"


@pytest.mark.parametrize("path", COMPONENTS, ids=lambda path: path.parent.name)
def test_inputs_are_typed_described_defaulted_and_used(path: Path) -> None:
    header, body = split(path)
    inputs = header["spec"]["inputs"]
    for name, spec in inputs.items():
        assert spec.get("description"), f"input {name} has no description"
        assert "default" in spec, f"input {name} has no default: every include would need it"
        assert spec.get("type", "string") in TYPES
    assert set(INPUT.findall(body)) == set(inputs), "an input is declared but unused, or unknown"


@pytest.mark.parametrize("path", COMPONENTS, ids=lambda path: path.parent.name)
def test_rendered_component_matches_gitlab_ci_schema(path: Path, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yml"
    rendered.write_text(render(path))
    args = ("--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci")
    result = check_jsonschema(*args, str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cleanup_runs_only_on_its_schedule_and_the_web_job_never_blocks() -> None:
    job = yaml.safe_load(render(ROOT / "templates" / "cleanup" / "template.yml"))
    rules = job["ci-env-cleanup"]["rules"]
    assert '$CIENV_CLEANUP == "true"' in rules[0]["if"]
    assert rules[1] == {
        "if": '$CI_PIPELINE_SOURCE == "web"',
        "when": "manual",
        "allow_failure": True,
    }
    # One resource group per shard: the shards of one pipeline are not serialised.
    assert "$CI_NODE_INDEX" in job["ci-env-cleanup"]["resource_group"]


def test_no_job_installs_anything() -> None:
    for path in COMPONENTS:
        assert not re.search(r"pip install|apk add|apt-get", path.read_text()), path


PIPELINE = """\
include:
  - component: $CI_SERVER_FQDN/ci-env/ci-env/cleanup@$CI_COMMIT_SHA
    inputs:
      repo: $CI_REGISTRY/group/*
      parallel: 2
      cleanup_args: --keep-latest 1 --keep-newer-than 0s
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "ci-env"
    shutil.copytree(ROOT / "templates", project / "templates")
    (project / ".gitlab-ci.yml").write_text(PIPELINE)
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    # The component's project path is the origin's: gitlab-ci-local never contacts it.
    subprocess.run(
        [*git, "remote", "add", "origin", "git@gitlab.example.invalid:ci-env/ci-env.git"]
    )
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "component"], check=True)
    return project


@pytest.mark.slow
@pytest.mark.timeout(1500)  # a first install of gitlab-ci-local compiles re2
def test_component_shards_clean_every_repository(
    registry: LocalRegistry, tmp_path: Path, base_install: Path
) -> None:
    try:
        binary = gitlab_ci_local.ensure()
    except gitlab_ci_local.Unavailable as error:
        unavailable(str(error))
    old = datetime.now(UTC) - timedelta(days=30)
    repositories = [f"group/app-{number}" for number in range(4)]
    for repository in repositories:
        for day, name in enumerate(["old-1", "old-2", "new"]):
            push_image(registry, repository, name, created=old + timedelta(days=day))
    variables = {
        "CI_SERVER_FQDN": "gitlab.example.invalid",
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "CI_PIPELINE_SOURCE": "schedule",
        "CIENV_CLEANUP": "true",
        "CIENV_REPO_CONTAINER_REGISTRY": "default",  # plain Docker Registry API, not GitLab's
    }
    # The image is ignored by the shell executor: ci-env comes from the checkout's wheel.
    env = {"PATH": f"{base_install}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = gitlab_ci_local.run(binary, _project(tmp_path), ["ci-env-cleanup"], variables, env=env)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert registry.password not in log
    assert "[1/2]" in log, log
    assert "[2/2]" in log, log
    # Each repository was planned by exactly one shard.
    planned = re.findall(r"\[(\d)/2\] > \S+/(group/app-\d) \(", log)
    assert sorted(repo for _, repo in planned) == repositories, log
    assert {repo: list_tags(registry, repo) for repo in repositories} == {
        repo: ["new"] for repo in repositories
    }
