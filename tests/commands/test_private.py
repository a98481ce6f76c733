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
import pytest

from tests.support import images
from tests.support.clirun import ROOT, base_env, run_cli
from tests.support.harness import registry_with_users
from tests.support.registry import LocalRegistry


def run_umask0(
    *args: str, env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env, stdin=stdin, timeout=120, umask=0)


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
    assert "private.key" not in names
    assert "private" not in names
    assert "key.pem" not in names
    assert os.readlink(job / "loop") == "."
    assert os.readlink(job / "loop2") == "."
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
    assert data["detachKeys"] == "ctrl-e,e"
    assert registry.host in data["auths"]
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


_FAKE_HELPER = """#!{python}
# A docker-credential helper keeping one machine-wide store (a JSON file) and logging calls.
import json, sys
store, log = {store!r}, {log!r}
action = sys.argv[1]
data = sys.stdin.read()
with open(log, "a") as out:
    out.write(action + "\\n")
try:
    with open(store) as f:
        creds = json.load(f)
except FileNotFoundError:
    creds = {{}}
if action == "store":
    item = json.loads(data)
    creds[item["ServerURL"]] = [item["Username"], item["Secret"]]
elif action == "erase":
    creds.pop(data.strip(), None)
elif action == "get":
    if data.strip() not in creds:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = creds[data.strip()]
    print(json.dumps({{"ServerURL": data.strip(), "Username": user, "Secret": secret}}))
elif action == "list":
    print(json.dumps({{url: pair[0] for url, pair in creds.items()}}))
with open(store, "w") as f:
    json.dump(creds, f)
"""


def _skopeo_reads(ref: str, docker_config: Path, home: Path) -> bool:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "DOCKER_CONFIG": str(docker_config)}
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0


def test_parallel_jobs_never_share_the_source_credential_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry_with_users({"alice": "alice-Pw-1", "bob": "bob-Pw-22"})
    try:
        images.push_image(reg, "grp/app", "v1")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        helper = bin_dir / "docker-credential-fake"
        store, log = tmp_path / "machine-store.json", tmp_path / "helper.log"
        helper.write_text(
            _FAKE_HELPER.format(python=sys.executable, store=str(store), log=str(log))
        )
        helper.chmod(0o755)
        src = tmp_path / "src"
        src.mkdir()
        (src / "config.json").write_text('{"credsStore": "fake", "auths": {}}')
        path = f"{bin_dir}:{os.environ['PATH']}"
        monkeypatch.setenv("PATH", path)  # the docker SDK below finds the helper too

        def job(user: str, password: str) -> subprocess.Popen[str]:
            env = base_env(
                tmp_path / "home", PATH=path, DOCKER_CONFIG=str(src),
                CIENV_REGISTRY=reg.host, CIENV_REGISTRY_USERNAME=user,
                CIENV_REGISTRY_PASSWORD=password, CIENV_TMP_DIR=str(tmp_path / "jobs"),
            )  # fmt: skip
            return subprocess.Popen(
                [sys.executable, "-m", "ci_env", "env", "generic", "--format", "json"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
            )  # fmt: skip

        runs = {"alice": job("alice", "alice-Pw-1"), "bob": job("bob", "bob-Pw-22")}
        jobs = {}
        for user, proc in runs.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            jobs[user] = Path(json.loads(out)["DOCKER_CONFIG"])
        for user, directory in jobs.items():
            config = docker.auth.load_config(str(directory / "config.json"))
            assert config.resolve_authconfig(reg.host)["username"] == user
            assert "credsStore" not in json.loads((directory / "config.json").read_text())
            assert _skopeo_reads(f"{reg.host}/grp/app:v1", directory, tmp_path)
        logout = base_env(tmp_path / "home", PATH=path, DOCKER_CONFIG=str(jobs["alice"]))
        assert (
            subprocess.run(
                [sys.executable, "-m", "ci_env", "logout"], env=logout, cwd=str(ROOT), timeout=60
            ).returncode
            == 0
        )
        logout["DOCKER_CONFIG"] = str(jobs["bob"])
        assert subprocess.run(
            [sys.executable, "-m", "ci_env", "logout", reg.host], env=logout, cwd=str(ROOT),
            timeout=60,
        ).returncode == 0  # fmt: skip
        calls = log.read_text().split() if log.exists() else []
        assert "store" not in calls, calls
        assert "erase" not in calls, calls
        assert not store.exists() or reg.host not in store.read_text()
        assert not jobs["alice"].exists()
    finally:
        reg.close()
