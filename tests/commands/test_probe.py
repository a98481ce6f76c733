"""`ci-env probe` against the real local registry (htpasswd and token server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import images
from tests.support.clirun import base_env, run_cli
from tests.support.registry import LocalRegistry


@pytest.mark.parametrize("fixture", ["registry", "token_registry"])
def test_probe_write_pushes_and_removes_everything(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    reg: LocalRegistry = request.getfixturevalue(fixture)
    digest = images.push_image(reg, "grp/app", "v1", via="http")
    config = reg.write_docker_config(tmp_path / "docker")
    env = base_env(tmp_path, DOCKER_CONFIG=str(config))
    result = run_cli("probe", f"{reg.host}/grp/app", "--write", "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert all(check["ok"] for check in checks.values()), checks
    assert set(checks) == {
        "authenticate",
        "list tags",
        "read manifest",
        "delete (dry)",
        "push OCI manifest",
        "untag one tag",
        "push OCI artifact",
        "delete by digest",
    }
    assert "throwaway manifest" in checks["untag one tag"]["detail"]
    assert images.list_tags(reg, "grp/app") == ["v1"]  # scratch tags gone, v1 untouched
    assert images.manifest_exists(reg, "grp/app", digest)
    assert reg.password not in result.stdout + result.stderr


def test_probe_read_only_by_default(registry: LocalRegistry, tmp_path: Path) -> None:
    images.push_image(registry, "grp/app", "v1", via="http")
    config = registry.write_docker_config(tmp_path / "docker")
    result = run_cli(
        "probe", f"{registry.host}/grp/app", env=base_env(tmp_path, DOCKER_CONFIG=str(config))
    )
    assert result.returncode == 0, result.stderr
    assert "delete (dry)" in result.stdout
    assert "push" not in result.stdout
    assert images.list_tags(registry, "grp/app") == ["v1"]


def test_probe_with_bad_credentials_exits_3(registry: LocalRegistry, tmp_path: Path) -> None:
    config = registry.write_docker_config(tmp_path / "docker", password="wrong-password-1")
    result = run_cli(
        "probe",
        f"{registry.host}/grp/app",
        "--write",
        env=base_env(tmp_path, DOCKER_CONFIG=str(config)),
    )
    assert result.returncode == 3
    assert "FAIL" in result.stdout
    assert "skipped: authentication failed" in result.stdout
    assert "wrong-password-1" not in result.stdout + result.stderr


def test_probe_reader_cannot_delete(token_registry: LocalRegistry, tmp_path: Path) -> None:
    images.push_image(token_registry, "grp/app", "v1", via="http")
    config = token_registry.write_docker_config(tmp_path / "d", "reader", "reader-pass-123")
    result = run_cli(
        "probe",
        f"{token_registry.host}/grp/app",
        "--json",
        env=base_env(tmp_path, DOCKER_CONFIG=str(config)),
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["list tags"]["ok"]
    assert not checks["delete (dry)"]["ok"]
    assert result.returncode == 3
