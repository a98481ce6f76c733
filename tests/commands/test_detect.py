"""`ci-env detect` through the real CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.clirun import base_env, run_cli


def test_human_output_names_kind_and_methods(tmp_path: Path) -> None:
    result = run_cli("detect", "cr.yandex/crp1/app", env=base_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "kind:" in result.stdout
    assert "yandex (Yandex Container Registry)" in result.stdout
    for label in ("auth:", "listing:", "untag:", "delete:", "cleanup needs:", "limitations:"):
        assert label in result.stdout


def test_json_output(tmp_path: Path) -> None:
    result = run_cli("detect", "localhost:5000/x", "--json", env=base_env(tmp_path))
    info = json.loads(result.stdout)
    assert info["kind"] == "default"
    assert info["registry"] == "localhost:5000"
    assert info["repository"] == "localhost:5000/x"
    assert "throwaway" in info["untag"]
    assert info["limitations"]


def test_overrides_in_precedence_order(tmp_path: Path) -> None:
    env = base_env(
        tmp_path, WERF_REPO_CONTAINER_REGISTRY="gcr", CIENV_REPO_CONTAINER_REGISTRY="nexus"
    )
    assert json.loads(run_cli("detect", "r.example.com/x", "--json", env=env).stdout)["kind"] == (
        "nexus"
    )
    env.pop("CIENV_REPO_CONTAINER_REGISTRY")
    assert json.loads(run_cli("detect", "r.example.com/x", "--json", env=env).stdout)["kind"] == (
        "gcr"
    )
    result = run_cli(
        "detect", "r.example.com/x", "--json", "--repo-container-registry", "yandex", env=env
    )
    assert json.loads(result.stdout)["kind"] == "yandex"


def test_ci_registry_host_is_gitlab(tmp_path: Path) -> None:
    env = base_env(tmp_path, CI_REGISTRY="gitlab.example.com:5050")
    result = run_cli("detect", "gitlab.example.com:5050/grp/app", "--json", env=env)
    assert json.loads(result.stdout)["kind"] == "gitlab"


def test_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    bad_kind = run_cli("detect", "x/y", "--repo-container-registry", "bogus", env=env)
    assert bad_kind.returncode == 2
    assert "use one of:" in bad_kind.stderr
    assert "Traceback" not in bad_kind.stderr
    bad_ref = run_cli("detect", "https://ghcr.io/a/b", env=env)
    assert bad_ref.returncode == 2
    assert "URL scheme" in bad_ref.stderr
    with_tag = run_cli("detect", "ghcr.io/a/b:1", env=env)
    assert with_tag.returncode == 2
    assert "Traceback" not in with_tag.stderr
