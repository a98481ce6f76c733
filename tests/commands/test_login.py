"""`ci-env login`: verified before saving, stdin only, CI variables, ECR hook, concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import docker.auth
import pytest
from moto import mock_aws

from ci_env import cli, logins
from tests.support.clirun import ROOT, base_env, run_cli
from tests.support.registry import LocalRegistry


def _resolved(config_dir: Path, host: str) -> tuple[str, str] | None:
    config = docker.auth.load_config(str(config_dir / "config.json"))
    found = config.resolve_authconfig(host)
    return (found["username"], found["password"]) if found else None


def test_password_stdin(registry: LocalRegistry, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(cfg))
    result = run_cli(
        "login", registry.host, "-u", registry.username, "--password-stdin",
        env=env, stdin=registry.password + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert registry.password not in result.stdout + result.stderr
    assert _resolved(cfg, registry.host) == (registry.username, registry.password)


def test_wrong_password_saves_nothing(token_registry: LocalRegistry, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(cfg))
    result = run_cli(
        "login", token_registry.host, "-u", "ci", "--password-stdin",
        env=env, stdin="nope-wrong-sentinel",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert token_registry.host in result.stderr
    assert "stdin" in result.stderr
    assert "nope-wrong-sentinel" not in result.stderr
    assert not (cfg / "config.json").exists()


def test_from_cienv_variables_into_home_docker(registry: LocalRegistry, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = base_env(
        home,
        CIENV_REGISTRY_USERNAME=registry.username,
        CIENV_REGISTRY_PASSWORD=registry.password,
    )
    result = run_cli("login", registry.host, env=env)
    assert result.returncode == 0, result.stderr
    assert _resolved(home / ".docker", registry.host) == (registry.username, registry.password)


def test_from_gitlab_variables(registry: LocalRegistry, tmp_path: Path) -> None:
    env = base_env(
        tmp_path / "home",
        DOCKER_CONFIG=str(tmp_path / "cfg"),
        GITLAB_CI="true",
        CI_REGISTRY=registry.host,
        CI_REGISTRY_USER=registry.username,
        CI_REGISTRY_PASSWORD=registry.password,
    )
    result = run_cli("login", registry.host, env=env)
    assert result.returncode == 0, result.stderr
    assert "CI_REGISTRY_PASSWORD" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("login", "r.example", "-u", "someone"),  # a password would have to be in argv
        ("login", "r.example"),  # no credentials anywhere
        ("login", "r.example", "-u", "x", "--password-stdin"),  # empty stdin
    ],
)
def test_usage_errors(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run_cli(*args, env=base_env(tmp_path / "home"), stdin="")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_two_concurrent_logins_both_end_up_in_one_config(
    registry: LocalRegistry, token_registry: LocalRegistry, tmp_path: Path
) -> None:
    cfg = tmp_path / "cfg"
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(cfg))
    processes = []
    for _round in range(3):
        for reg in (registry, token_registry):
            process = subprocess.Popen(
                [sys.executable, "-m", "ci_env", "login", reg.host, "-u", reg.username,
                 "--password-stdin"],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, cwd=str(ROOT),
            )  # fmt: skip
            assert process.stdin is not None
            process.stdin.write(reg.password)
            process.stdin.close()
            processes.append(process)
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    auths = json.loads((cfg / "config.json").read_text())["auths"]
    assert sorted(auths) == sorted([registry.host, token_registry.host])


@pytest.mark.parametrize(
    ("host", "ecr"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", True),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", True),
        ("123456789012.dkr-ecr.us-east-1.on.aws", True),
        ("public.ecr.aws", True),
        ("ecr.example.com", False),
        ("ghcr.io", False),
    ],
)
def test_ecr_hosts(host: str, ecr: bool) -> None:
    assert logins.is_ecr(host) is ecr


def test_ecr_login_takes_the_password_from_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    with mock_aws():
        token = boto3.client("ecr", region_name="eu-west-1").get_authorization_token()
        # Verification would reach the real ECR endpoint; moto has no registry endpoint.
        assert cli.main(["login", host, "--no-verify"]) == 0
    user, password = _resolved(tmp_path, host) or ("", "")
    assert user == "AWS"
    assert password
    assert token["authorizationData"]
    assert password not in capsys.readouterr().err
