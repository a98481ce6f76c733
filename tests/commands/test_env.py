"""`ci-env env` end to end: real CLI process, real `docker-registry`, skopeo as the client."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker.auth
import pytest

from tests.support.clirun import base_env, run_cli
from tests.support.images import push_image
from tests.support.registry import LocalRegistry, _htpasswd


def _skopeo_can_read(ref: str, docker_config: str, home: Path) -> bool:
    """skopeo with nothing but DOCKER_CONFIG pointing at the job's config (HOME elsewhere)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "DOCKER_CONFIG": docker_config}
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0 and "schemaVersion" in result.stdout


def _auth_of(docker_config: str, host: str) -> tuple[str, str]:
    config = docker.auth.load_config(os.path.join(docker_config, "config.json"))
    found = config.resolve_authconfig(host)
    return found["username"], found["password"]


def _jobs(root: Path) -> list[Path]:
    return sorted(root.glob("ci-env-docker-config-*")) if root.exists() else []


def test_gitlab_job_logs_in_and_skopeo_reads_with_only_docker_config(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    push_image(registry, "group/app", "v1")
    env = base_env(
        tmp_path / "home",
        GITLAB_CI="true",
        CI_REGISTRY=registry.host,
        CI_REGISTRY_IMAGE=f"{registry.host}/group/app",
        CI_REGISTRY_USER=registry.username,
        CI_REGISTRY_PASSWORD=registry.password,
        CI_ENVIRONMENT_SLUG="review-1",
        CIENV_TMP_DIR=str(tmp_path / "tmp"),
    )
    # The job's own shell sources the output, as a GitLab `before_script` would.
    script = (
        'eval "$("$PY" -m ci_env env)" && '
        'printf "%s\\n%s\\n%s\\n%s" "$DOCKER_CONFIG" "$CIENV_REPO" '
        '"$CIENV_REPO_CONTAINER_REGISTRY" "$CIENV_ENV"'
    )
    result = subprocess.run(
        ["sh", "-c", script],
        env={**env, "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert result.returncode == 0, result.stderr
    docker_config, repo, kind, slug = result.stdout.split("\n")
    assert (repo, kind, slug) == (f"{registry.host}/group/app", "gitlab", "review-1")
    assert Path(docker_config).parent == tmp_path / "tmp"
    assert stat.S_IMODE(Path(docker_config).stat().st_mode) == 0o700
    assert stat.S_IMODE((Path(docker_config) / "config.json").stat().st_mode) == 0o600
    assert _auth_of(docker_config, registry.host) == (registry.username, registry.password)
    assert _skopeo_can_read(f"{repo}:v1", docker_config, tmp_path / "elsewhere")


def test_github_job_writes_github_env_and_masks(
    token_registry: LocalRegistry, tmp_path: Path
) -> None:
    push_image(token_registry, "octo/app", "v1")
    github_env = tmp_path / "github_env"
    github_env.write_text("EARLIER=1\n")
    env = base_env(
        tmp_path / "home",
        GITHUB_ACTIONS="true",
        GITHUB_REPOSITORY="Octo/App",
        GITHUB_ENV=str(github_env),
        RUNNER_TEMP=str(tmp_path / "runner"),
        # No GITHUB_TOKEN: ghcr.io is not reachable from tests; log in through CIENV_REGISTRY.
        CIENV_REGISTRY=token_registry.host,
        CIENV_REGISTRY_USERNAME=token_registry.username,
        CIENV_REGISTRY_PASSWORD=token_registry.password,
    )
    result = run_cli("env", "--format", "github", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"::add-mask::{token_registry.password}" in result.stderr.splitlines()
    assert "::group::" in result.stderr
    assert "::endgroup::" in result.stderr
    text = github_env.read_text()
    assert text.startswith("EARLIER=1\n")
    lines = text.splitlines()
    exported = {
        lines[i].split("<<")[0]: lines[i + 1] for i, line in enumerate(lines) if "<<" in line
    }
    assert exported["CIENV_REPO"] == "ghcr.io/octo/app"
    docker_config = exported["DOCKER_CONFIG"]
    assert Path(docker_config).parent == tmp_path / "runner"
    assert _auth_of(docker_config, token_registry.host)[0] == token_registry.username
    assert _skopeo_can_read(f"{token_registry.host}/octo/app:v1", docker_config, tmp_path / "x")


def test_github_without_token_logs_in_to_nothing(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home", GITHUB_ACTIONS="true", CIENV_TMP_DIR=str(tmp_path))
    result = run_cli("env", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert "not logging in" in result.stderr
    assert "GITHUB_TOKEN" in result.stderr
    assert json.loads(result.stdout)["DOCKER_CONFIG"] == str(_jobs(tmp_path)[0])


def test_wrong_password_exits_3_and_leaves_nothing(registry: LocalRegistry, tmp_path: Path) -> None:
    env = base_env(
        tmp_path / "home",
        CIENV_TMP_DIR=str(tmp_path / "tmp"),
        CIENV_REGISTRY=registry.host,
        CIENV_REGISTRY_USERNAME=registry.username,
        CIENV_REGISTRY_PASSWORD="wrong-password-sentinel",
    )
    result = run_cli("env", env=env)
    assert result.returncode == 3, result.stderr
    assert registry.host in result.stderr
    assert "CIENV_REGISTRY_PASSWORD" in result.stderr
    assert "wrong-password-sentinel" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert result.stdout == "exit 1\n"  # a sourcing script stops too
    assert _jobs(tmp_path / "tmp") == []


def test_docker_auth_config(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home", CIENV_TMP_DIR=str(tmp_path))
    auth = {"auths": {"r.example": {"auth": base64.b64encode(b"u:p-sentinel").decode()}}}
    ok = run_cli(
        "env", "--use-docker-auth-config", "--format", "json",
        env={**env, "DOCKER_AUTH_CONFIG": json.dumps(auth)},
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    config = Path(json.loads(ok.stdout)["DOCKER_CONFIG"]) / "config.json"
    assert json.loads(config.read_text()) == auth
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    for bad in ("[1, 2]", "{not json p-sentinel", ""):
        result = run_cli("env", "--use-docker-auth-config", env={**env, "DOCKER_AUTH_CONFIG": bad})
        assert result.returncode == 2, result.stderr
        assert "DOCKER_AUTH_CONFIG" in result.stderr
        assert "p-sentinel" not in result.stderr
    assert len(_jobs(tmp_path)) == 1


def test_copy_skips_sockets_and_plugins_and_keeps_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "cli-plugins").mkdir(parents=True)
    (src / "cli-plugins" / "docker-buildx").write_text("binary")
    (src / "config.json").write_text('{"auths": {}, "detachKeys": "ctrl-e,e"}')
    (src / "runtime.json").write_text("{}")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "s.sock"))
    try:
        env = base_env(tmp_path / "home", DOCKER_CONFIG=str(src), CIENV_TMP_DIR=str(tmp_path))
        result = run_cli("env", "--format", "json", "--no-login", env=env)
    finally:
        sock.close()
    assert result.returncode == 0, result.stderr
    job = Path(json.loads(result.stdout)["DOCKER_CONFIG"])
    assert sorted(p.name for p in job.iterdir()) == [".ci-env-job", "config.json", "runtime.json"]
    assert "ctrl-e,e" in (job / "config.json").read_text()


def test_werf_variables_are_fallbacks(tmp_path: Path) -> None:
    src = tmp_path / "werf-config"
    src.mkdir()
    (src / "config.json").write_text('{"auths": {"werf.example": {"auth": "dTpw"}}}')
    env = base_env(
        tmp_path / "home",
        GITLAB_CI="true",
        CI_REGISTRY_IMAGE="registry.gitlab.example/g/app",
        WERF_DOCKER_CONFIG=str(src),
        WERF_TMP_DIR=str(tmp_path / "werf-tmp"),
        WERF_REPO="registry.example/werf/app",
        DOCKER_CONFIG="/stale/previous-job",
    )
    result = run_cli("env", "--no-login", env=env)
    assert result.returncode == 0, result.stderr
    [job] = _jobs(tmp_path / "werf-tmp")
    assert f"export DOCKER_CONFIG='{job}'" in result.stdout  # always overridden
    assert "# skip CIENV_REPO (WERF_REPO is already set)" in result.stdout
    assert "werf.example" in (job / "config.json").read_text()


def test_as_file_and_output(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home", CIENV_TMP_DIR=str(tmp_path), PY=sys.executable)
    script = '. "$("$PY" -m ci_env env --no-login --as-file)" && printf %s "$DOCKER_CONFIG"'
    result = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60,
        cwd=str(Path(__file__).resolve().parents[2]),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [job] = _jobs(tmp_path)
    assert result.stdout == str(job)
    assert stat.S_IMODE((job / "ci-env.sh").stat().st_mode) == 0o600
    out = tmp_path / "build.env"
    result = run_cli("env", "gitlab", "--no-login", "--format", "dotenv", "-o", str(out), env=env)
    assert result.returncode == 0
    assert result.stdout == ""
    assert out.read_text().startswith("DOCKER_CONFIG=")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def many_users_registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry("htpasswd")
    users = {f"job{i}": f"job-password-{i}-sentinel" for i in range(20)}
    _htpasswd(reg.root / "htpasswd", users)  # replaces the default users before start
    reg.start()
    try:
        yield reg
    finally:
        reg.close()


def test_twenty_parallel_jobs_each_get_only_their_own_credential(
    many_users_registry: LocalRegistry, tmp_path: Path
) -> None:
    reg = many_users_registry
    source = tmp_path / "shared-source"
    source.mkdir()
    (source / "config.json").write_text(
        json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6c2VjcmV0"}}})
    )
    before = _digest_tree(source)
    processes = []
    for i in range(20):
        env = base_env(
            tmp_path / "home",
            DOCKER_CONFIG=str(source),
            CIENV_TMP_DIR=str(tmp_path / "tmp"),
            CIENV_REGISTRY=reg.host,
            CIENV_REGISTRY_USERNAME=f"job{i}",
            CIENV_REGISTRY_PASSWORD=f"job-password-{i}-sentinel",
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "ci_env", "env", "--format", "json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    seen = set()
    for i, process in enumerate(processes):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        docker_config = json.loads(out)["DOCKER_CONFIG"]
        seen.add(docker_config)
        auths = json.loads((Path(docker_config) / "config.json").read_text())["auths"]
        assert sorted(auths) == sorted(["other.example", reg.host])
        assert _auth_of(docker_config, reg.host) == (f"job{i}", f"job-password-{i}-sentinel")
    assert len(seen) == 20
    assert _digest_tree(source) == before


def test_powershell_output_doubles_typographic_quotes(tmp_path: Path) -> None:
    # PowerShell also ends '...' at U+2018..U+201B: undoubled, `Remove-Item` would run.
    value = "registry.example/g/app\u2019; Remove-Item -Recurse ~; \u2019"
    env = base_env(
        tmp_path / "home", GITLAB_CI="true", CI_REGISTRY_IMAGE=value, CIENV_TMP_DIR=str(tmp_path)
    )
    result = run_cli("env", "--no-login", "--format", "powershell", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        "$Env:CIENV_REPO = 'registry.example/g/app\u2019\u2019; Remove-Item -Recurse ~; "
        "\u2019\u2019'" in result.stdout.splitlines()
    ), result.stdout
