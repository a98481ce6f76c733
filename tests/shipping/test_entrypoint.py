"""entrypoint.py / post_entrypoint.py: INPUT_* -> CLI arguments, results -> file commands.

The mapping functions are checked directly; the Action mode then runs for real on the host
(the real CLI against the local registry, file-command files in a temp dir) — the container
run is in test_image.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import entrypoint
from tests.support.images import list_tags, push_image, skopeo_inspect
from tests.support.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]


def inputs(**values: str) -> dict[str, str]:
    return {f"INPUT_{name.replace('_', '-').upper()}": value for name, value in values.items()}


def test_cleanup_inputs_map_to_options_hyphens_kept() -> None:
    env = inputs(
        command="cleanup",
        repo="ghcr.io/o/a\n\nghcr.io/o/b\n",
        dry_run="true",
        keep_latest="5",
        older_than="30d",
        keep_tags="^v\\d+$\nmain",
        shard="2/4",
        report="r.json",
        extra_args="--untagged delete --parallel '4'",
    )
    args, stdin = entrypoint.cli_args(env, in_container=False)
    assert stdin is None
    assert args == [
        "cleanup",
        "--repo",
        "ghcr.io/o/a",
        "--repo",
        "ghcr.io/o/b",
        "--dry-run",
        "--keep-latest",
        "5",
        "--delete-older-than",
        "30d",
        "--keep-tag",
        "^v\\d+$",
        "--keep-tag",
        "main",
        "--shard",
        "2/4",
        "--report-json",
        "r.json",
        "--untagged",
        "delete",
        "--parallel",
        "4",
    ]
    assert "INPUT_DRY-RUN" in env  # the runner's spelling


def test_the_cache_dir_input_is_the_cache_dir_option() -> None:
    args, _ = entrypoint.cli_args(inputs(command="cleanup", cache_dir=".c"), in_container=False)
    assert args == ["cleanup", "--cache-dir", ".c"]


@pytest.mark.skipif(os.geteuid() != 0, reason="handing over needs root, as in the container")
def test_the_cache_dir_is_handed_to_the_runner_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    os.chown(workspace, 1001, 1001)  # GitHub-hosted runners' user

    def cli(args: list[str], env: object, stdin: object) -> int:
        (workspace / ".c/blobs/sha256").mkdir(parents=True)
        (workspace / ".c/blobs/sha256/ab").write_text("{}")
        return 0

    monkeypatch.setattr(entrypoint, "run_cli", cli)
    monkeypatch.chdir(workspace)
    entrypoint.run_cleanup(["cleanup", "--cache-dir", ".c"], {}, None)
    for path in (workspace / ".c", workspace / ".c/blobs/sha256/ab"):
        assert path.stat().st_uid == 1001, path


def test_false_flags_and_empty_inputs_add_nothing() -> None:
    env = inputs(command="cleanup", dry_run="false", keep_latest="", verbose="false")
    assert entrypoint.cli_args(env, in_container=False)[0] == ["cleanup"]


@pytest.mark.parametrize(("name", "value"), [("dry_run", "maybe"), ("verbose", "ture")])
def test_unknown_boolean_input_stops_with_exit_2(
    name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = inputs(command="cleanup", **{name: value})
    with pytest.raises(SystemExit) as stop:
        entrypoint.cli_args(env, in_container=False)
    assert stop.value.code == 2
    assert f"::error::input '{name.replace('_', '-')}' must be true or false" in (
        capsys.readouterr().err
    )


def test_env_in_container_uses_the_mounted_home() -> None:
    args, _ = entrypoint.cli_args(inputs(command="env", login="false"), in_container=True)
    assert args == [
        "env",
        "github",
        "--format",
        "github",
        "--no-login",
        "--tmp-dir",
        "/github/home",
    ]


def test_secrets_never_become_arguments() -> None:
    env = inputs(command="login", registry="r.example", username="u", password="pw-secret-1")
    env["INPUT_GITHUB-TOKEN"] = "ghs_token_value"
    args, stdin = entrypoint.cli_args(env, in_container=False)
    assert args == ["login", "r.example", "--password-stdin", "--username", "u"]
    assert stdin == "pw-secret-1"
    child = entrypoint.child_env(env)
    assert child["GITHUB_TOKEN"] == "ghs_token_value"
    assert "CIENV_REGISTRY_PASSWORD" not in child
    env_child = entrypoint.child_env(inputs(command="env", registry="r", password="pw-secret-1"))
    assert env_child["CIENV_REGISTRY_PASSWORD"] == "pw-secret-1"


def test_unknown_command_is_an_annotation() -> None:
    with pytest.raises(SystemExit, match="::error::"):
        entrypoint.cli_args(inputs(command="deploy"), in_container=False)


def test_container_paths_become_runner_host_paths() -> None:
    text = (
        "DOCKER_CONFIG=/github/home/ci-env-x\nOTHER=/github/homework\nX<<EOF\n/github/home\nEOF\n"
    )
    assert entrypoint.host_path(text, "/home/runner/work/_temp/") == (
        "DOCKER_CONFIG=/home/runner/work/_temp/_github_home/ci-env-x\nOTHER=/github/homework\n"
        "X<<EOF\n/home/runner/work/_temp/_github_home\nEOF\n"
    )


def test_file_command_syntax_both_forms() -> None:
    text = "A=1\nB<<ghadelimiter_x\nline 1\nline=2\nghadelimiter_x\nC=x<<y\n"
    assert entrypoint.env_values(text) == {"A": "1", "B": "line 1\nline=2", "C": "x<<y"}


def test_report_totals_become_outputs() -> None:
    report = {"totals": {"kept": 4, "deleted": 2, "untagged": 1, "failed": 1, "not-run": 3}}
    assert entrypoint.report_counts(report) == {"deleted": 3, "kept": 4, "failed": 1}
    dry = {"totals": {"kept": 1, "would-delete": 5, "would-untag": 1}}
    assert entrypoint.report_counts(dry) == {"deleted": 6, "kept": 1, "failed": 0}


def test_fatal_lines_become_annotations() -> None:
    assert entrypoint.annotate("error: bad policy — fix it\n") == "::error::bad policy — fix it\n"
    usage = "ci-env cleanup: error: argument --keep-latest: 'x' is not a whole number\n"
    assert entrypoint.annotate(usage).startswith("::error::argument --keep-latest")
    assert entrypoint.annotate("ci-env: logged in\n") == "ci-env: logged in\n"


# ---- real runs on the host -------------------------------------------------------------------


def _github(tmp_path: Path) -> dict[str, str]:
    files = {}
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE", "GITHUB_STEP_SUMMARY"):
        path = tmp_path / name.lower()
        path.touch()
        files[name] = str(path)
    home = tmp_path / "home"
    home.mkdir()
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "CIENV_"))
    }
    base.pop("DOCKER_CONFIG", None)
    return {
        **base,
        **files,
        "HOME": str(home),
        "GITHUB_ACTIONS": "true",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "PYTHONPATH": str(ROOT),
    }


def _run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / script)]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _values(path: str) -> dict[str, str]:
    return entrypoint.env_values(Path(path).read_text())


def test_plain_mode_is_the_cli(tmp_path: Path) -> None:
    result = _run("entrypoint.py", {**_github(tmp_path)}, tmp_path)
    assert result.returncode == 0
    assert "usage: ci-env" in result.stdout
    version = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert version.stdout.startswith("ci-env ")


def test_action_env_then_cleanup_then_post(registry: LocalRegistry, tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    push_image(registry, "team/app", "old", created=old)
    push_image(registry, "team/app", "new", created=datetime.now(UTC))
    (tmp_path / "runner-temp").mkdir()
    env = _github(tmp_path)
    login = inputs(
        command="env",
        registry=registry.host,
        username=registry.username,
        password=registry.password,
    )
    result = _run("entrypoint.py", {**env, **login}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"::add-mask::{registry.password}" in result.stdout
    exported = _values(env["GITHUB_ENV"])
    config = Path(exported["DOCKER_CONFIG"])
    assert config.parent == tmp_path / "runner-temp"  # not in a container: no translation
    assert _values(env["GITHUB_OUTPUT"]) == {"docker-config": str(config)}
    assert _values(env["GITHUB_STATE"]) == {"CIENV_DOCKER_CONFIG": str(config)}
    assert skopeo_inspect(registry, "team/app:new", docker_config=config) is not None

    (tmp_path / "step2").mkdir()
    step = _github(tmp_path / "step2")  # each step gets fresh file-command files
    cleanup = inputs(
        command="cleanup",
        repo=f"{registry.host}/team/app",
        keep_latest="1",
        newer_than="0s",
        report="report.json",
    )
    result = _run("entrypoint.py", {**step, **cleanup, "DOCKER_CONFIG": str(config)}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _values(step["GITHUB_OUTPUT"]) == {
        "deleted": "1",
        "kept": "1",
        "failed": "0",
        "deleted-tags": f'["{registry.host}/team/app:old"]',
        "failed-tags": "[]",
        "report": "report.json",
    }
    assert json.loads((tmp_path / "report.json").read_text())["totals"]["deleted"] == 1
    assert list_tags(registry, "team/app") == ["new"]

    post = _run("post_entrypoint.py", {**env, "STATE_CIENV_DOCKER_CONFIG": str(config)}, tmp_path)
    assert post.returncode == 0, post.stderr
    assert not config.exists()


def test_post_without_state_does_nothing(tmp_path: Path) -> None:
    result = _run("post_entrypoint.py", _github(tmp_path), tmp_path)
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_failed_cleanup_is_annotated_without_traceback(tmp_path: Path) -> None:
    env = {
        **_github(tmp_path),
        **inputs(command="cleanup", repo="127.0.0.1:9/x", policy="missing.yml"),
    }
    result = _run("entrypoint.py", env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("::error::"), result.stderr
    assert "Traceback" not in result.stderr


def test_registry_auth_logs_in_to_each_registry(
    registry: LocalRegistry, token_registry: LocalRegistry, tmp_path: Path
) -> None:
    push_image(registry, "team/app", "one", created=datetime.now(UTC))
    push_image(token_registry, "team/app", "two", created=datetime.now(UTC))
    (tmp_path / "runner-temp").mkdir()
    env = _github(tmp_path)
    auth = "".join(
        f"- registry: {reg.host}\n  username: {reg.username}\n  password: '{reg.password}'\n"
        for reg in (registry, token_registry)
    )
    result = _run("entrypoint.py", {**env, **inputs(command="env", registry_auth=auth)}, tmp_path)
    assert result.returncode == 0, result.stderr
    for reg in (registry, token_registry):
        assert f"::add-mask::{reg.password}" in result.stdout
        assert reg.password not in result.stderr
    config = Path(_values(env["GITHUB_ENV"])["DOCKER_CONFIG"])
    assert skopeo_inspect(registry, "team/app:one", docker_config=config) is not None
    assert skopeo_inspect(token_registry, "team/app:two", docker_config=config) is not None


def test_registry_auth_that_is_not_a_list_of_logins_is_refused(tmp_path: Path) -> None:
    env = {**_github(tmp_path), **inputs(command="env", registry_auth="registry: only-a-host")}
    result = _run("entrypoint.py", env, tmp_path)
    assert result.returncode != 0
    assert "::error::input 'registry-auth' must be a YAML list" in result.stdout + result.stderr


def test_one_error_is_one_annotation(registry: LocalRegistry, tmp_path: Path) -> None:
    (tmp_path / "runner-temp").mkdir()
    login = inputs(
        command="env", registry=registry.host, username=registry.username, password="wrong-pw"
    )
    result = _run("entrypoint.py", {**_github(tmp_path), **login}, tmp_path)
    assert result.returncode == 3, result.stderr
    assert (result.stdout + result.stderr).count("::error::") == 1, result.stdout + result.stderr
