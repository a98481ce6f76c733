"""Concurrency: many jobs on one machine, logins racing on one config, two cleanups at once.

Every `ci-env` here is a real process started at the same moment as its siblings; the checks
are on the files they leave behind (each job's config holds exactly its own credential, a
shared config holds every login, a repository cleaned twice at once ends exactly as planned).
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.faultproxy import FaultProxy
from tests.support.harness import Result, auth_of, base_env, registry_with_users, run_cli
from tests.support.registry import LocalRegistry

JOBS = 50


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def many_users() -> Iterator[tuple[LocalRegistry, dict[str, str]]]:
    users = {
        f"job{i:02d}": f"pw-{i:02d}-{hashlib.sha256(str(i).encode()).hexdigest()[:12]}"
        for i in range(JOBS)
    }
    reg = registry_with_users(users)
    try:
        yield reg, users
    finally:
        reg.close()


def test_50_parallel_env_jobs_each_get_only_their_credential(
    many_users: tuple[LocalRegistry, dict[str, str]], tmp_path: Path
) -> None:
    reg, users = many_users
    source = tmp_path / "source-docker"
    harness.write_auth_config(source, {"other.example:5000": ("shared", "shared-secret")})
    (source / "plugins.json").write_text('{"keep": "me"}')
    before = _tree_digest(source)
    shared_tmp = tmp_path / "runner-temp"
    shared_tmp.mkdir()

    def job(item: tuple[str, str]) -> tuple[str, Result]:
        user, password = item
        env = base_env(
            tmp_path,
            DOCKER_CONFIG=str(source),
            RUNNER_TEMP=str(shared_tmp),
            CIENV_REGISTRY=reg.host,
            CIENV_REGISTRY_USERNAME=user,
            CIENV_REGISTRY_PASSWORD=password,
        )
        return user, run_cli(["env", "--format", "json"], env, timeout=240)

    with ThreadPoolExecutor(JOBS) as pool:
        results = list(pool.map(job, users.items()))

    directories = set()
    for user, result in results:
        assert result.code == 0, result.describe()
        job_dir = Path(json.loads(result.stdout)["DOCKER_CONFIG"])
        directories.add(job_dir)
        assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((job_dir / "config.json").stat().st_mode) == 0o600
        assert auth_of(job_dir, reg.host) == (user, users[user])
        # The copied source entry is there too, untouched.
        assert auth_of(job_dir, "other.example:5000") == ("shared", "shared-secret")
        assert (job_dir / "plugins.json").read_text() == '{"keep": "me"}'
    assert len(directories) == JOBS
    assert _tree_digest(source) == before


def test_logins_racing_on_one_config_all_end_up_in_it(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """Ten `ci-env login` processes for ten hosts (proxies in front of one registry) write the
    same config.json at once: every login is in it, the file is valid JSON and 0600."""
    config = tmp_path / "docker"
    harness.write_auth_config(config, {"pre.example": ("pre", "existing-pass")})
    with ExitStack() as stack:
        proxies = [stack.enter_context(FaultProxy(registry.url, lifetime=120)) for _ in range(10)]
        env = base_env(tmp_path, DOCKER_CONFIG=str(config))
        argv = [
            harness.command(["login", p.host, "-u", registry.username, "--password-stdin"])
            for p in proxies
        ]
        procs = [
            subprocess.Popen(
                a,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=harness.ROOT,
            )
            for a in argv
        ]
        outputs = [p.communicate(registry.password, timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, outputs
    assert stat.S_IMODE((config / "config.json").stat().st_mode) == 0o600
    for proxy in proxies:
        assert auth_of(config, proxy.host) == (registry.username, registry.password)
    assert auth_of(config, "pre.example") == ("pre", "existing-pass")
    leftovers = [p.name for p in config.iterdir() if p.name not in {"config.json"}]
    assert all(not name.endswith((".tmp", ".new")) for name in leftovers), leftovers


def test_same_host_login_race_leaves_one_valid_credential(
    many_users: tuple[LocalRegistry, dict[str, str]], tmp_path: Path
) -> None:
    reg, users = many_users
    config = tmp_path / "docker"
    chosen = dict(list(users.items())[:8])
    env = base_env(tmp_path, DOCKER_CONFIG=str(config))

    def login(item: tuple[str, str]) -> Result:
        user, password = item
        return run_cli(["login", reg.host, "-u", user, "--password-stdin"], env, stdin=password)

    with ThreadPoolExecutor(len(chosen)) as pool:
        results = list(pool.map(login, chosen.items()))
    assert all(r.code == 0 for r in results), [r.describe() for r in results]
    stored = auth_of(config, reg.host)
    assert stored is not None
    assert stored in chosen.items()


def test_two_cleanups_of_one_repository_at_once_end_exactly_as_planned(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """Two jobs clean the same repositories at the same moment (a re-triggered pipeline).

    They race on every delete and on the throwaway-manifest untag of a shared digest; whatever
    the interleaving, no kept tag may move or go, and after one more run every planned removal
    is done. A loser's failures are reported (exit 1), never a traceback.
    """
    from tests.support import scenarios  # noqa: PLC0415

    for repo in scenarios.REPOS:
        scenarios.seed(registry, repo)
    config = harness.write_auth_config(
        tmp_path / "docker", {registry.host: (registry.username, registry.password)}
    )
    env = base_env(tmp_path, DOCKER_CONFIG=str(config))
    expected = scenarios._plan(registry, tmp_path, env)
    args = ["cleanup", *scenarios.POLICY, *scenarios.FAST]
    for repo in scenarios.REPOS:
        args += ["--repo", f"{registry.host}/{repo}"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli(args, env, timeout=240), range(2)))
    for result in results:
        assert result.code in (0, 1), result.describe()
        assert "Traceback" not in result.output
    rerun = run_cli(args, env, timeout=240)
    assert rerun.code == 0, rerun.describe()
    for repo, tags in expected.items():
        for tag_name, (action, digest) in tags.items():
            now = scenarios._resolve(registry, repo, tag_name)
            if action == "keep":
                assert now == digest, f"{repo}:{tag_name} kept tag moved or went: {now}"
            else:
                assert now is None, f"{repo}:{tag_name} planned {action} but still {now}"
