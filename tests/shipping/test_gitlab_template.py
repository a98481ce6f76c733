"""The GitLab CI template: schema-valid, and run for real by gitlab-ci-local (shell executor).

The pipeline `include:`s the template; a job extending `.ci-env` logs in to the local
registry from the CI_REGISTRY_* variables and a later script line pulls a manifest with
skopeo using only DOCKER_CONFIG; a `.ci-env-cleanup` job deletes by policy; after the jobs the
per-job config directory is gone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import gitlab_ci_local
from tests.support.images import list_tags, push_image
from tests.support.registry import LocalRegistry
from tests.support.tools import check_jsonschema as run_check_jsonschema
from tests.support.tools import unavailable
from tests.support.wheels import checkout_wheel, lock_wheels

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "gitlab-ci-template.yml"
DOCS = ROOT / "README.md"

PIPELINE = """\
include:
  - local: gitlab-ci-template.yml

stages: [build, cleanup]

variables:
  OUT_DIR: "{out}"
  CIENV_PIP_SPEC: "{wheel}"
  CIENV_PIP_ARGS: "--no-index --find-links {wheels}"

use-registry:
  stage: build
  extends: .ci-env
  script:
    - command -v ci-env > "$OUT_DIR/ci-env-path"
    - echo "$DOCKER_CONFIG" > "$OUT_DIR/docker-config-path"
    - skopeo inspect --raw --tls-verify=false --authfile "$DOCKER_CONFIG/config.json"
      "docker://$CI_REGISTRY_IMAGE:keep-me" > "$OUT_DIR/manifest.json"

registry-cleanup:
  stage: cleanup
  extends: .ci-env-cleanup
  after_script:
    - !reference [.ci-env, after_script]
    - cp "$CIENV_REPORT" "$OUT_DIR/report.json"
"""


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    # The gitlab-ci transform teaches its YAML loader GitLab's `!reference` tag.
    return run_check_jsonschema(
        "--builtin-schema", schema, "--data-transform", "gitlab-ci", str(path)
    )


def test_template_matches_gitlab_ci_schema() -> None:
    result = check_jsonschema("vendor.gitlab-ci", TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_gitlab_example_matches_gitlab_ci_schema(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n# \.gitlab-ci\.yml\n(.*?)```", DOCS.read_text(), re.S)
    assert blocks, "README.md has no ```yaml block starting with '# .gitlab-ci.yml'"
    for number, block in enumerate(blocks):
        example = tmp_path / f"example-{number}.yml"
        example.write_text(block)
        result = check_jsonschema("vendor.gitlab-ci", example)
        assert result.returncode == 0, result.stdout + result.stderr


def _project(tmp_path: Path, out: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(TEMPLATE, project / "gitlab-ci-template.yml")
    # OUT_DIR and the wheel are in the pipeline: gitlab-ci-local turns variables-file values
    # that name an existing path into file variables.
    # ci-env is not on the shell runner: each job installs the wheel built from this checkout,
    # pinned by path, with its locked dependencies and no index.
    pipeline = PIPELINE.replace("{out}", str(out)).replace("{wheels}", str(lock_wheels()))
    pipeline = pipeline.replace("{wheel}", str(checkout_wheel(tmp_path / "dist")))
    (project / ".gitlab-ci.yml").write_text(pipeline)
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    # gitlab-ci-local derives CI_PROJECT_* from the origin remote; it is never contacted.
    subprocess.run([*git, "remote", "add", "origin", "git@gitlab.example.invalid:group/app.git"])
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "pipeline"], check=True)
    return project


@pytest.mark.slow
@pytest.mark.timeout(1500)  # a first install compiles re2 (about 6 minutes on 2 cores)
def test_pipeline_logs_in_uses_credentials_cleans_up_and_disposes(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    try:
        binary = gitlab_ci_local.ensure()
    except gitlab_ci_local.Unavailable as error:
        unavailable(str(error))
    old = datetime.now(UTC) - timedelta(days=30)
    for day, name in enumerate(["old-1", "old-2", "old-3"]):
        push_image(registry, "group/app", name, created=old + timedelta(days=day))
    push_image(registry, "group/app", "keep-me", created=datetime.now(UTC))
    out = tmp_path / "out"
    out.mkdir()
    variables = {
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "CI_REGISTRY_IMAGE": f"{registry.host}/group/app",
        "CI_PIPELINE_SOURCE": "schedule",
        # The local registry speaks the plain Docker Registry API, not GitLab's.
        "CIENV_REPO_CONTAINER_REGISTRY": "default",
        "CIENV_CLEANUP_ARGS": "--keep-latest 1 --keep-newer-than 0s",
    }
    project = _project(tmp_path, out)
    jobs = ["use-registry", "registry-cleanup"]
    result = gitlab_ci_local.run(binary, project, jobs, variables, env=_runner_env())
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert registry.password not in log

    installed = (out / "ci-env-path").read_text().strip()
    assert "/ci-env-venv-" in installed, f"the job ran {installed}, not the pinned wheel"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schemaVersion"] == 2
    docker_config = Path((out / "docker-config-path").read_text().strip())
    assert docker_config.name, log
    assert not docker_config.exists(), f"{docker_config} outlived the job"

    assert list_tags(registry, "group/app") == ["keep-me"]
    report = json.loads((out / "report.json").read_text())
    assert report["totals"].get("deleted") == 3, report
    leftovers = [*Path("/tmp").glob("ci-env-job-*.sh"), *Path("/tmp").glob("ci-env-venv-*")]
    assert not [p for p in leftovers if p.stat().st_mtime > out.stat().st_mtime]


def _runner_env() -> dict[str, str]:
    """This environment without the suite's venv on PATH: the runner has no ci-env of its own."""
    scripts = os.path.realpath(sysconfig.get_path("scripts"))
    path = [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if os.path.realpath(p) != scripts
    ]
    return {**os.environ, "PATH": os.pathsep.join(path)}
