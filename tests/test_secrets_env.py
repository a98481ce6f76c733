"""Every env/login/logout/gc run with sentinel secrets: none may appear in any output.

Runs the real CLI with `-v` (debug logging on) against the real registry, with each credential
variable holding a unique sentinel, through success and failure paths. The only place a secret
may be printed is GitHub's own `::add-mask::` command, which hides it from the log.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.clirun import base_env, run_cli
from tests.support.ports import free_port
from tests.support.registry import LocalRegistry

SENTINELS = {
    "CIENV_REGISTRY_PASSWORD": "sentinel-cienv-Pw-1111",
    "CI_REGISTRY_PASSWORD": "sentinel-ci-registry-2222",
    "CI_JOB_TOKEN": "sentinel-job-token-3333",
    "CI_DEPENDENCY_PROXY_PASSWORD": "sentinel-proxy-4444",
    "GITHUB_TOKEN": "sentinel-github-5555",
    "DOCKER_AUTH_CONFIG": '{"auths": {"x.example": {"auth": "c2VudGluZWwtYXV0aC02NjY2"}}}',
    "STDIN": "sentinel-stdin-7777",
}
FORBIDDEN = [*SENTINELS.values(), "sentinel-auth-6666", "c2VudGluZWwtYXV0aC02NjY2"]


def _check(result: subprocess.CompletedProcess[str], github: bool = False) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    for line in (result.stdout + result.stderr).splitlines():
        if github and line.startswith("::add-mask::"):
            continue
        for secret in FORBIDDEN:
            assert secret not in line, f"secret leaked: {line!r}"


def test_no_command_prints_a_secret(registry: LocalRegistry, tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens: a transport failure path
    good = {
        "CIENV_REGISTRY": registry.host,
        "CIENV_REGISTRY_USERNAME": registry.username,
        "CIENV_REGISTRY_PASSWORD": registry.password,
    }
    wrong = {**good, "CIENV_REGISTRY_PASSWORD": SENTINELS["CIENV_REGISTRY_PASSWORD"]}
    gitlab = {
        "GITLAB_CI": "true",
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": SENTINELS["CI_REGISTRY_PASSWORD"],
        "CI_JOB_TOKEN": SENTINELS["CI_JOB_TOKEN"],
        "CI_DEPENDENCY_PROXY_SERVER": closed,
        "CI_DEPENDENCY_PROXY_USER": "proxy",
        "CI_DEPENDENCY_PROXY_PASSWORD": SENTINELS["CI_DEPENDENCY_PROXY_PASSWORD"],
    }
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ENV": str(tmp_path / "github_env"),
        "GITHUB_TOKEN": SENTINELS["GITHUB_TOKEN"],
    }
    base = base_env(tmp_path / "home", CIENV_TMP_DIR=str(tmp_path / "tmp"))
    cfg = str(tmp_path / "cfg")
    runs: list[tuple[tuple[str, ...], dict[str, str], str | None, bool]] = [
        (("env",), {**base, **wrong}, None, False),
        (("env", "--format", "json"), {**base, **gitlab}, None, False),
        (("env", "gitlab", "--no-login"), {**base, **gitlab}, None, False),
        (("env", "--format", "github", "--no-login"), {**base, **github, **good}, None, True),
        (
            ("env", "--use-docker-auth-config"),
            {**base, "DOCKER_AUTH_CONFIG": SENTINELS["DOCKER_AUTH_CONFIG"]},
            None,
            False,
        ),
        (
            ("env", "--use-docker-auth-config"),
            {**base, "DOCKER_AUTH_CONFIG": SENTINELS["DOCKER_AUTH_CONFIG"][:-3]},
            None,
            False,
        ),
        (
            ("login", registry.host, "-u", "ci", "--password-stdin", "--docker-config", cfg),
            base,
            SENTINELS["STDIN"],
            False,
        ),
        (("login", closed, "--docker-config", cfg), {**base, **wrong}, None, False),
        (("login", registry.host, "--docker-config", cfg), {**base, **gitlab}, None, False),
        (("logout", registry.host, "--docker-config", cfg), base, None, False),
        (("logout", "--docker-config", cfg), base, None, False),
        (("gc", "--older-than", "0s"), {**base, **wrong}, None, False),
    ]
    for args, env, stdin, in_github in runs:
        result = run_cli("-v", *args, env=env, stdin=stdin)
        _check(result, github=in_github)
    # Failure paths really ran (the checks above would pass vacuously otherwise).
    assert run_cli("env", env={**base, **wrong}).returncode == 3
    # The GitHub run stored nothing secret in $GITHUB_ENV either.
    assert SENTINELS["GITHUB_TOKEN"] not in (tmp_path / "github_env").read_text()
