"""`ci-env logout`: one registry, or the per-job directory (only when it carries the marker)."""

from __future__ import annotations

import json
from pathlib import Path

from ci_env import credstore
from tests.support.clirun import base_env, run_cli


def test_logout_registry(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    credstore.store(cfg, "r1.example", "u", "pw-one-sentinel")
    credstore.store(cfg, "r2.example", "u", "pw-two-sentinel")
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(cfg))
    result = run_cli("logout", "r1.example", env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads((cfg / "config.json").read_text())["auths"]) == ["r2.example"]
    again = run_cli("logout", "r1.example", env=env)
    assert again.returncode == 0
    assert "no credentials" in again.stderr


def test_logout_removes_the_job_directory(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home", CIENV_TMP_DIR=str(tmp_path))
    made = run_cli("env", "--no-login", "--format", "json", env=env)
    job = json.loads(made.stdout)["DOCKER_CONFIG"]
    result = run_cli("logout", env={**env, "DOCKER_CONFIG": job})
    assert result.returncode == 0, result.stderr
    assert not Path(job).exists()
    gone = run_cli("logout", env={**env, "DOCKER_CONFIG": job})
    assert gone.returncode == 0
    assert "already gone" in gone.stderr


def test_logout_refuses_a_directory_without_marker(tmp_path: Path) -> None:
    home_docker = tmp_path / "home" / ".docker"
    home_docker.mkdir(parents=True)
    (home_docker / "config.json").write_text("{}")
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(home_docker))
    result = run_cli("logout", env=env)
    assert result.returncode == 2
    assert "not a ci-env job directory" in result.stderr
    assert (home_docker / "config.json").exists()
    unset = run_cli("logout", env=base_env(tmp_path / "home"))
    assert unset.returncode == 2
    assert "DOCKER_CONFIG" in unset.stderr
