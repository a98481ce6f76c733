"""`pip install ci-env` (the base, no extra): a wheel built from the checkout, installed with
no index into a fresh venv, runs `ci-env env` and a cleanup through the Docker Registry API;
a registry that needs an SDK says which extra to install, and deletes nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.images import list_tags, push_image
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.slow

SDKS = ("boto3", "github", "gitlab", "kubernetes")


@dataclass
class Venv:
    bin: Path
    home: Path

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8"}
        return subprocess.run(
            [str(self.bin / "ci-env"), *args],
            env={**clean, **env},
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def base_venv(base_install: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    yield Venv(base_install, tmp_path_factory.mktemp("home"))


def test_the_base_install_has_no_sdk(base_venv: Venv) -> None:
    python = str(base_venv.bin / "python")
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe, *SDKS], capture_output=True, text=True)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr


def test_env_runs_on_the_base(base_venv: Venv) -> None:
    result = base_venv.run("env", "generic", "--no-login", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["DOCKER_CONFIG"]).is_dir()


def test_registry_api_cleanup_runs_on_the_base(base_venv: Venv, registry: LocalRegistry) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    for day, name in enumerate(["old-1", "old-2"]):
        push_image(registry, "grp/app", name, created=old + timedelta(days=day))
    push_image(registry, "grp/app", "new", created=datetime.now(UTC))
    config = registry.write_docker_config(base_venv.home / "docker")
    result = base_venv.run(
        "cleanup",
        "--repo",
        f"{registry.host}/grp/app",
        "--keep-latest",
        "1",
        "--keep-newer-than",
        "0s",
        DOCKER_CONFIG=str(config),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list_tags(registry, "grp/app") == ["new"]


@pytest.mark.parametrize(
    ("repo", "extra"),
    [
        ("ghcr.io/octo-org/app", "github"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", "aws"),
    ],
)
def test_a_backend_without_its_extra_names_the_extra(
    base_venv: Venv, repo: str, extra: str
) -> None:
    result = base_venv.run(
        "cleanup",
        "--repo",
        repo,
        "--keep-latest",
        "1",
        CIENV_REPO_GITHUB_TOKEN="t0ken-for-test",
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret-for-test",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pip install 'ci-env[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr
