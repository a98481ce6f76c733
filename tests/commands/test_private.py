"""Job directories and output files stay private (issue 16, items 4-6), through the real CLI.

Every run here is under umask 000, as in a CI image that sets it: what ci-env creates must be
0700 (directories) and 0600 (files) anyway. The source configs are as a careless or hostile
machine leaves them: world-writable, full of symlinks, a sparse 4 GiB file, 20 levels deep.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import docker.auth

from tests.commands.clirun import ROOT, base_env
from tests.support import images
from tests.support.registry import LocalRegistry


def run_umask0(
    *args: str, env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_env", *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
        umask=0,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _job(result: subprocess.CompletedProcess[str]) -> Path:
    assert result.returncode == 0, result.stderr
    return Path(json.loads(result.stdout)["DOCKER_CONFIG"])


def test_job_dir_is_private_whatever_the_source_modes_and_umask(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "contexts" / "meta").mkdir(parents=True)
    (src / "config.json").write_text('{"auths": {}}')
    (src / "contexts" / "meta" / "meta.json").write_text("{}")
    for path in (src, src / "contexts", src / "contexts" / "meta"):
        path.chmod(0o777)
    for path in (src / "config.json", src / "contexts" / "meta" / "meta.json"):
        path.chmod(0o666)
    tmp_dir = tmp_path / "made" / "by" / "ci-env"
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(src))
    job = _job(
        run_umask0("env", "--no-login", "--format", "json", "--tmp-dir", str(tmp_dir), env=env)
    )
    assert _mode(job) == 0o700
    for path in job.rglob("*"):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    for created in (tmp_dir, tmp_dir.parent, tmp_dir.parent.parent):
        assert _mode(created) == 0o700, created


def test_copy_takes_nothing_from_outside_and_is_bounded(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.key").write_text("KEY")
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text('{"auths": {}}')
    (src / "private").symlink_to(outside)  # a directory outside the source
    (src / "key.pem").symlink_to(outside / "private.key")  # a file outside
    (src / "loop").symlink_to(".")
    (src / "loop2").symlink_to(".")
    (src / "alias.json").symlink_to("config.json")  # inside: kept as a link
    with open(src / "sparse.img", "wb") as sparse:
        sparse.truncate(4 * 1024**3)
    deep = src.joinpath(*[f"d{i}" for i in range(20)])
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("deep")
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(src))
    args = ("env", "--no-login", "--format", "json", "--tmp-dir", str(tmp_path))
    result = run_umask0(*args, env=env)
    job = _job(result)
    names = {p.name for p in job.rglob("*")}
    assert "private.key" not in names and "private" not in names and "key.pem" not in names
    assert os.readlink(job / "loop") == "." and os.readlink(job / "loop2") == "."
    assert os.readlink(job / "alias.json") == "config.json"
    assert not (job / "sparse.img").exists()
    assert "bottom.txt" not in names
    assert sum(1 for _ in job.rglob("*")) < 30
    for skipped in ("private", "key.pem", "sparse.img", "outside the source", "16 MiB"):
        assert skipped in result.stderr, result.stderr


def test_login_writes_through_a_symlinked_config_as_docker_does(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "docker.json").write_text('{"detachKeys": "ctrl-e,e"}')
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.json").symlink_to(dotfiles / "docker.json")
    env = base_env(tmp_path / "home", DOCKER_CONFIG=str(cfg))
    result = run_umask0(
        "login", registry.host, "-u", registry.username, "--password-stdin",
        env=env, stdin=registry.password,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (cfg / "config.json").is_symlink()
    assert os.readlink(cfg / "config.json") == str(dotfiles / "docker.json")
    data = json.loads((dotfiles / "docker.json").read_text())
    assert data["detachKeys"] == "ctrl-e,e" and registry.host in data["auths"]
    assert _mode(dotfiles / "docker.json") == 0o600
    found = docker.auth.load_config(str(cfg / "config.json")).resolve_authconfig(registry.host)
    assert found["password"] == registry.password


def test_plan_report_and_step_summary_are_private(registry: LocalRegistry, tmp_path: Path) -> None:
    images.push_image(registry, "grp/app", "v1")
    config = tmp_path / "docker"
    config.mkdir(mode=0o700)
    entry = {"auths": {registry.host: {"auth": registry.auth_entry()}}}
    (config / "config.json").write_text(json.dumps(entry))
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (out / "report.json").chmod(0o666)  # an existing world-writable file becomes private too
    env = base_env(
        tmp_path,
        DOCKER_CONFIG=str(config),
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(out / "summary.md"),
    )
    result = run_umask0(
        "cleanup", "--repo", f"{registry.host}/grp/app", "--dry-run",
        "--plan-out", str(out / "plan.json"), "--report-json", str(out / "report.json"),
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("plan.json", "report.json", "summary.md"):
        assert _mode(out / name) == 0o600, name
