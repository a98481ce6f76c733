"""`ci-env cleanup` options a user of the peers expects: `-v` on the sub-command, and
`--apply-plan` refusing the policy options it would otherwise ignore."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.support import images
from tests.support.clirun import base_env, run_cli
from tests.support.registry import LocalRegistry


def test_cleanup_v_lists_kept_tags_and_logs(registry: LocalRegistry, tmp_path: Path) -> None:
    images.push_image(registry, "grp/app", "v1", created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    env = base_env(tmp_path, DOCKER_CONFIG=str(registry.write_docker_config(tmp_path / "d")))
    repo = f"{registry.host}/grp/app"
    result = run_cli("cleanup", "-v", "--repo", repo, "--keep-tag", "v1", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout
    assert "v1" in result.stdout
    assert "DEBUG " in result.stderr  # the requests and decisions, as with `ci-env -v`


def test_apply_plan_refuses_policy_options(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"  # never read: the refusal comes first
    result = run_cli(
        "cleanup",
        "--apply-plan",
        str(plan),
        "--keep-latest",
        "3",
        "--keep-tag",
        "main",
        env=base_env(tmp_path),
    )
    assert result.returncode == 2, result.stderr
    assert "cannot take --keep-latest, --keep-tag" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_glob_looking_tag_pattern_is_warned_about(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    images.push_image(registry, "grp/app", "v1", created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    env = base_env(tmp_path, DOCKER_CONFIG=str(registry.write_docker_config(tmp_path / "d")))
    repo = f"{registry.host}/grp/app"
    glob = run_cli("cleanup", "--repo", repo, "--keep-tag", "v*", "--dry-run", env=env)
    assert glob.returncode == 0, glob.stderr
    assert "warning: keep tag pattern 'v*' looks like a glob" in glob.stderr
    assert "write 'v.*'" in glob.stderr
    assert "would-delete  v1" in glob.stdout  # as the warning says: `v*` does not keep v1
    regex = run_cli("cleanup", "--repo", repo, "--keep-tag", "v.*", "--dry-run", env=env)
    assert "warning" not in regex.stderr
    assert "kept" in regex.stdout


def test_group_titles_carry_the_counts(registry: LocalRegistry, tmp_path: Path) -> None:
    images.push_image(registry, "grp/app", "v1", created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    summary = tmp_path / "summary.md"
    env = base_env(
        tmp_path,
        DOCKER_CONFIG=str(registry.write_docker_config(tmp_path / "d")),
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    repo = f"{registry.host}/grp/app"
    result = run_cli("cleanup", "--repo", repo, "--keep-tag", "v1", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert f"::group::cleanup {repo}: 1 kept\n" in result.stdout


def test_an_unreachable_registry_is_not_nothing_to_do(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    env = base_env(tmp_path, DOCKER_CONFIG=str(registry.write_docker_config(tmp_path / "d")))
    repos = ["--repo", f"{registry.host}/grp/app", "--repo", "127.0.0.1:9/grp/app"]
    result = run_cli("cleanup", *repos, "--dry-run", env=env, timeout=120)
    assert result.returncode != 0
    assert "127.0.0.1:9/grp/app (default): not planned\n" in result.stdout, result.stdout
    assert "FAILED CLOSED" in result.stdout
