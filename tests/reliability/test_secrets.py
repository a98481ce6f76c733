"""Secrets: every command, with a distinct sentinel in every credential variable, leaks none.

Each `ci-env` run here is a real child process whose environment holds a sentinel in every
credential variable ci-env reads (`SENTINELS`), success paths and failure paths alike (wrong
password, unreachable registry, 401/403 from native API fakes, `-v`). Afterwards no sentinel
(nor the base64 `user:password` a Basic header or config entry would hold) appears in stdout,
stderr, a report, a plan, any other file the run left (except the Docker config files that are
meant to hold credentials, which must be 0600 in a 0700 directory), or — watched while the
commands run by `harness.ArgvWatch` — in the argument list of any process (a credential helper
gets its secret on stdin). GitHub's `::add-mask::<secret>` workflow command is the one line
allowed to carry a secret: the runner swallows it to mask the value.

TLS is verified unless the user asks otherwise: a registry on a host name that is not
loopback-looking, serving https with a self-signed certificate, is a clear error and gets no
credential; the same server is accepted once its certificate is trusted (REQUESTS_CA_BUNDLE),
and plain http to that name is allowed only with --insecure-registry. Credentials never go to
another host: the fault proxy redirects blob and manifest GETs to a second loopback server (a
different host:port) and records that no Authorization header reached it.

Any process that would reach the internet (ghcr.io in GitHub mode) goes to a dead loopback
proxy instead (HTTPS_PROXY), so it fails fast and offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import ssl
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes._front import Front
from tests.fakes.acr_api import FakeAcr
from tests.fakes.dockerhub_api import FakeDockerHub
from tests.fakes.github_api import FakeGitHub
from tests.fakes.gitlab_api import FakeGitLab, GitLabRegistry
from tests.fakes.harbor_api import Artifact, FakeHarbor
from tests.support import faultproxy as fp
from tests.support import motoserver
from tests.support.harness import (
    TRACEBACK,
    ArgvWatch,
    Result,
    auth_of,
    base_env,
    registry_with_users,
    run_cli,
    write_auth_config,
)
from tests.support.images import list_tags, push_image, tag
from tests.support.ports import free_port
from tests.support.registry import LocalRegistry
from tests.support.tls import loopback_name, self_signed

pytestmark = pytest.mark.timeout(240)


def _sentinel(name: str) -> str:
    return f"SENTINEL-{name.lower().replace('_', '-')}-7q3z"


CREDENTIAL_VARIABLES = (
    "CIENV_REGISTRY_PASSWORD",
    "GITHUB_TOKEN",
    "CI_JOB_TOKEN",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPENDENCY_PROXY_PASSWORD",
    "CIENV_REPO_GITHUB_TOKEN",
    "CIENV_REPO_GITLAB_TOKEN",
    "CIENV_REPO_GITLAB_JOB_TOKEN",
    "CIENV_REPO_DOCKER_HUB_TOKEN",
    "CIENV_REPO_DOCKER_HUB_PASSWORD",
    "CIENV_REPO_HARBOR_PASSWORD",
    "CIENV_REPO_QUAY_TOKEN",
    "CIENV_REPO_SELECTEL_PASSWORD",
    "CIENV_REPO_AZURE_CLIENT_SECRET",
    "WERF_REPO_GITHUB_TOKEN",
    "WERF_REPO_GITLAB_TOKEN",
    "WERF_REPO_HARBOR_PASSWORD",
    "AZURE_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
SENTINELS = {name: _sentinel(name) for name in CREDENTIAL_VARIABLES}
WRONG = _sentinel("wrong_password")
STDIN_PASSWORD = _sentinel("password_stdin")
DAC_USER, DAC_PASSWORD = "dac-user", _sentinel("docker_auth_config")
GEN_USER, GL_USER = "gen-user", "gl-user"
REPO = "sec/app"
UNSET = "\0unset"  # as a value in `Session.run(**extra)`: drop that variable
# Nothing in these tests may reach the internet: a dead loopback proxy for non-loopback hosts.
OFFLINE = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def needles() -> tuple[str, ...]:
    """Every sentinel, and the base64 forms a Basic header or an `auth` entry would carry."""
    raw = [*SENTINELS.values(), WRONG, STDIN_PASSWORD, DAC_PASSWORD]
    users = (GEN_USER, GL_USER, DAC_USER, "gitlab-ci-token", "ci", "robot$ci", "sp-app")
    encoded = [_basic(u, p) for u in users for p in raw]
    return tuple(raw + encoded)


def docker_auth_config(host: str) -> str:
    return json.dumps({"auths": {host: {"auth": _basic(DAC_USER, DAC_PASSWORD)}}})


@dataclass
class Session:
    """Runs commands under one ArgvWatch and collects everything they printed."""

    home: Path
    watch: ArgvWatch
    results: list[Result] = field(default_factory=list)
    config_dirs: list[Path] = field(default_factory=list)  # hold credentials by design

    def env(self, **extra: str) -> dict[str, str]:
        env = base_env(self.home, **{**SENTINELS, **OFFLINE, **extra})
        return {k: v for k, v in env.items() if v != UNSET}

    def run(self, args: list[str], stdin: str | None = None, **extra: str) -> Result:
        result = run_cli(args, self.env(**extra), stdin=stdin, timeout=120)
        self.results.append(result)
        assert TRACEBACK not in result.output, result.describe()
        return result

    def check(self) -> None:
        wanted = needles()
        for result in self.results:
            for stream in (result.stdout, result.stderr):
                for line in stream.splitlines():
                    if line.startswith("::add-mask::"):
                        continue  # the GitHub runner consumes it to mask the value
                    leaked = [n for n in wanted if n in line]
                    assert not leaked, f"{leaked} in output of:\n{result.describe()}"
        skip = {d / "config.json" for d in self.config_dirs}
        for path in self.home.rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in skip:
                if path.name == "config.json" and _is_job_dir(path.parent):
                    continue
                data = path.read_bytes()
                leaked = [n for n in wanted if n.encode() in data]
                assert not leaked, f"{leaked} in {path}"
        assert not self.watch.hits, f"secrets in process arguments: {self.watch.hits}"
        assert self.watch.scans > 10


def _is_job_dir(path: Path) -> bool:
    return any(p.name.startswith(".ci-env") or "ci-env" in p.name for p in path.iterdir())


def assert_private(config_dir: Path) -> None:
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700, config_dir
    config = config_dir / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600, config


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    home = tmp_path / "home"
    home.mkdir()
    with ArgvWatch(needles()) as watch:
        yield Session(home, watch)


@pytest.fixture(scope="module")
def sreg() -> Iterator[LocalRegistry]:
    users = {
        GEN_USER: SENTINELS["CIENV_REGISTRY_PASSWORD"],
        GL_USER: SENTINELS["CI_REGISTRY_PASSWORD"],
        "gitlab-ci-token": SENTINELS["CI_JOB_TOKEN"],
        DAC_USER: DAC_PASSWORD,
    }
    reg = registry_with_users(users)
    try:
        base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        for i in range(4):
            push_image(reg, REPO, f"v{i}", seed=f"s{i}", created=base, via="http")
        tag(reg, REPO, "v0", "pr-1")
        yield reg
    finally:
        reg.close()


# --- a fake credential helper: the secret must arrive on stdin, never in argv --------------

HELPER = """#!/bin/sh
# docker-credential-sentinel: a file-backed credential helper; the secret comes on stdin.
store="$(dirname "$0")/store.json"
case "$1" in
  store) cat > "$store"; sleep 0.3 ;;
  get) cat > /dev/null; if [ -f "$store" ]; then cat "$store"; else
       echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) cat > /dev/null; rm -f "$store" ;;
  list) echo "{}" ;;
esac
"""


def install_helper(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    helper = directory / "docker-credential-sentinel"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    return directory


# --- the registry commands -------------------------------------------------------------------


def test_env_modes_leak_nothing_and_write_private_configs(
    sreg: LocalRegistry, session: Session
) -> None:
    jobs = session.home / "jobs"
    jobs.mkdir()
    common = {"CIENV_TMP_DIR": str(jobs), "DOCKER_CONFIG": str(session.home / "none")}
    # CIENV_REGISTRY_PASSWORD is set in every run: the other two must be too (exit 2 otherwise).
    common |= {"CIENV_REGISTRY": sreg.host, "CIENV_REGISTRY_USERNAME": GEN_USER}

    generic = session.run(
        ["-v", "env", "generic", "--format", "json"],
        **common,
    )
    assert generic.code == 0, generic.describe()
    job = Path(json.loads(generic.stdout)["DOCKER_CONFIG"])
    assert_private(job)
    assert auth_of(job, sreg.host) == (GEN_USER, SENTINELS["CIENV_REGISTRY_PASSWORD"])

    wrong = session.run(
        ["-v", "env", "generic"],
        **{**common, "CIENV_REGISTRY_PASSWORD": WRONG},
    )
    assert wrong.code != 0, wrong.describe()

    # GitLab's registry on another host:port (a proxy to the same registry): the CIENV_REGISTRY
    # login on sreg.host stays separate.
    proxy = fp.FaultProxy(sreg.url, lifetime=120).start()
    gl_host = proxy.host
    gitlab = {"GITLAB_CI": "true", "CI_REGISTRY": gl_host, "CI_PROJECT_PATH": REPO}
    gitlab["CI_REGISTRY_IMAGE"] = f"{gl_host}/{REPO}"
    with_user = session.run(
        ["-v", "env", "gitlab", "--format", "json"], CI_REGISTRY_USER=GL_USER, **gitlab, **common
    )
    assert with_user.code == 0, with_user.describe()
    job = Path(json.loads(with_user.stdout)["DOCKER_CONFIG"])
    assert_private(job)
    assert auth_of(job, gl_host) == (GL_USER, SENTINELS["CI_REGISTRY_PASSWORD"])
    env = session.env(**gitlab, **common)
    del env["CI_REGISTRY_PASSWORD"]  # a job without CI_REGISTRY_USER/PASSWORD uses the job token
    job_token = run_cli(["env", "gitlab", "--format", "json"], env, timeout=120)
    session.results.append(job_token)
    assert job_token.code == 0, job_token.describe()
    job = Path(json.loads(job_token.stdout)["DOCKER_CONFIG"])
    assert auth_of(job, gl_host) == ("gitlab-ci-token", SENTINELS["CI_JOB_TOKEN"])
    proxy.stop()

    # GitHub mode logs in to ghcr.io with GITHUB_TOKEN: offline, that login fails (through the
    # dead proxy); the token may only appear in the `::add-mask::` command.
    github_env = session.home / "github_env"
    github = session.run(
        ["-v", "env", "github", "--format", "github"],
        GITHUB_ACTIONS="true",
        GITHUB_ACTOR="octocat",
        GITHUB_REPOSITORY="acme/app",
        GITHUB_ENV=str(github_env),
        **common,
    )
    assert "ghcr.io" in github.output, github.describe()

    dac = session.run(
        ["env", "--use-docker-auth-config", "--no-login", "--format", "json"],
        DOCKER_AUTH_CONFIG=docker_auth_config(sreg.host),
        **common,
    )
    assert dac.code == 0, dac.describe()
    job = Path(json.loads(dac.stdout)["DOCKER_CONFIG"])
    assert_private(job)
    assert auth_of(job, sreg.host) == (DAC_USER, DAC_PASSWORD)

    as_file = session.run(
        ["env", "generic", "--as-file"],
        **common,
    )
    assert as_file.code == 0, as_file.describe()
    assert stat.S_IMODE(Path(as_file.stdout.strip()).stat().st_mode) == 0o600

    gc = session.run(["-v", "gc", "--older-than", "0s", "--tmp-dir", str(jobs)], **common)
    assert gc.code == 0, gc.describe()
    assert not [p for p in jobs.iterdir() if p.is_dir()], list(jobs.iterdir())
    session.check()


def test_login_logout_leak_nothing_and_write_private_configs(
    sreg: LocalRegistry, session: Session
) -> None:
    config = session.home / "docker"  # does not exist yet: ci-env creates it 0700
    session.config_dirs.append(config)
    dc = {"DOCKER_CONFIG": str(config)}
    args = ["login", sreg.host, "-u", GEN_USER, "--password-stdin"]
    good = session.run(["-v", *args], stdin=SENTINELS["CIENV_REGISTRY_PASSWORD"], **dc)
    assert good.code == 0, good.describe()
    assert_private(config)
    assert auth_of(config, sreg.host) == (GEN_USER, SENTINELS["CIENV_REGISTRY_PASSWORD"])

    wrong = session.run(["-v", *args], stdin=WRONG, **dc)
    assert wrong.code == 3, wrong.describe()
    unreachable = f"127.0.0.1:{free_port()}"
    gone = session.run(
        ["-v", "login", unreachable, "-u", GEN_USER, "--password-stdin"], stdin=STDIN_PASSWORD, **dc
    )
    assert gone.code not in (0, 2), gone.describe()
    from_vars = session.run(
        ["-v", "login", sreg.host], CIENV_REGISTRY_USERNAME=GEN_USER, CIENV_REGISTRY=sreg.host, **dc
    )
    assert from_vars.code == 0, from_vars.describe()
    assert_private(config)

    logout = session.run(["-v", "logout", sreg.host], **dc)
    assert logout.code == 0, logout.describe()
    assert auth_of(config, sreg.host) is None

    # Through a credential helper: the secret goes over stdin, the helper's argv stays clean.
    helpers = install_helper(session.home / "bin")
    hconfig = session.home / "docker-helper"
    hconfig.mkdir(mode=0o700)
    (hconfig / "config.json").write_text(json.dumps({"credsStore": "sentinel"}))
    (hconfig / "config.json").chmod(0o600)
    path = f"{helpers}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    via_helper = session.run(
        ["-v", *args],
        stdin=SENTINELS["CIENV_REGISTRY_PASSWORD"],
        DOCKER_CONFIG=str(hconfig),
        PATH=path,
    )
    assert via_helper.code == 0, via_helper.describe()
    stored = json.loads((helpers / "store.json").read_text())
    assert stored["Secret"] == SENTINELS["CIENV_REGISTRY_PASSWORD"]
    (helpers / "store.json").unlink()  # holds the secret by design (the helper's keychain)
    session.check()


def test_detect_probe_cleanup_leak_nothing(sreg: LocalRegistry, session: Session) -> None:
    config = write_auth_config(
        session.home / "docker", {sreg.host: (GEN_USER, SENTINELS["CIENV_REGISTRY_PASSWORD"])}
    )
    session.config_dirs.append(config)
    dc = {"DOCKER_CONFIG": str(config)}
    repo = f"{sreg.host}/{REPO}"
    out = session.home / "out"
    out.mkdir()
    for args in (
        ["-v", "detect", repo, "--probe", "--json"],
        ["-v", "probe", repo],
        ["-v", "probe", repo, "--write", "--json"],
    ):
        result = session.run(args, **dc)
        assert result.code == 0, result.describe()
    policy = ["--keep-newer-than", "0s", "--delete-tag", "pr-.*|v3"]
    dry = session.run(
        ["-v", "cleanup", "--repo", repo, *policy, "--dry-run", "--verbose",
         "--plan-out", str(out / "plan.json"), "--report-json", str(out / "dry.json")],
        **dc,
    )  # fmt: skip
    assert dry.code == 0, dry.describe()
    applied = session.run(
        ["-v", "cleanup", "--repo", repo, "--apply-plan", str(out / "plan.json"),
         "--report-json", str(out / "applied.json")],
        **dc,
    )  # fmt: skip
    assert applied.code == 0, applied.describe()
    assert list_tags(sreg, REPO) == ["v0", "v1", "v2"]

    wrong = write_auth_config(session.home / "docker-wrong", {sreg.host: (GEN_USER, WRONG)})
    session.config_dirs.append(wrong)
    refused = session.run(
        ["-v", "cleanup", "--repo", repo, *policy, "--report-json", str(out / "refused.json")],
        DOCKER_CONFIG=str(wrong),
    )
    assert refused.code == 3, refused.describe()
    for args in (["-v", "probe", repo], ["-v", "detect", repo, "--probe"]):
        session.run(args, DOCKER_CONFIG=str(wrong))
    dead = f"127.0.0.1:{free_port()}"
    unreachable = session.run(
        ["-v", "cleanup", "--repo", f"{dead}/{REPO}", *policy, "--max-attempts", "2",
         "--report-json", str(out / "dead.json")],
        DOCKER_CONFIG=str(write_auth_config(session.home / "docker-dead", {dead: ("u", WRONG)})),
    )  # fmt: skip
    session.config_dirs.append(session.home / "docker-dead")
    assert unreachable.code not in (0, 2), unreachable.describe()
    assert list_tags(sreg, REPO) == ["v0", "v1", "v2"]
    session.check()


# --- native backends through their fakes -----------------------------------------------------


def _seed_native(reg: LocalRegistry, repo: str) -> dict[str, str]:
    x = push_image(reg, repo, "v1", seed=f"{repo}-x", via="http")
    y = push_image(reg, repo, "pr-2", seed=f"{repo}-y", via="http")
    z = push_image(reg, repo, "pr-3", seed=f"{repo}-z", via="http")
    return {"v1": x, "pr-2": y, "pr-3": z}


POLICY = ["--keep-newer-than", "0s", "--delete-tag", "pr-.*"]


def _native_runs(session: Session, kind: str, ref: str, env: dict[str, str]) -> list[Result]:
    out = session.home / kind
    out.mkdir(exist_ok=True)
    base = ["-v", "cleanup", "--repo", ref, "--repo-container-registry", kind, *POLICY]
    dry = session.run(
        [*base, "--dry-run", "--verbose", "--plan-out", str(out / "plan.json"),
         "--report-json", str(out / "dry.json")],
        **env,
    )  # fmt: skip
    assert dry.code == 0, dry.describe()
    done = session.run([*base, "--report-json", str(out / "run.json")], **env)
    assert done.code == 0, done.describe()
    detect = session.run(["-v", "detect", ref, "--repo-container-registry", kind], **env)
    assert detect.code == 0, detect.describe()
    return [dry, done]


def _failing(session: Session, kind: str, ref: str, env: dict[str, str], code: int) -> None:
    out = session.home / kind
    result = session.run(
        ["-v", "cleanup", "--repo", ref, "--repo-container-registry", kind, *POLICY,
         "--max-attempts", "2", "--report-json", str(out / f"fail-{code}.json")],
        **env,
    )  # fmt: skip
    assert result.code == code, result.describe()


def test_github_native_leaks_nothing(registry: LocalRegistry, session: Session) -> None:
    _seed_native(registry, "acme/app")
    token = SENTINELS["CIENV_REPO_GITHUB_TOKEN"]
    api = FakeGitHub(registry=registry, token=token, lifetime=200).start()
    try:
        config = registry.write_docker_config(session.home / "docker")
        session.config_dirs.append(config)
        env = {"DOCKER_CONFIG": str(config), "GITHUB_API_URL": api.url}
        ref = f"{registry.host}/acme/app"
        _native_runs(session, "github", ref, env)
        assert list_tags(registry, "acme/app") == ["v1"]
        push_image(registry, "acme/app", "pr-9", seed="nine", via="http")
        _failing(session, "github", ref, {**env, "CIENV_REPO_GITHUB_TOKEN": WRONG}, 3)
        api.deny = True
        _failing(session, "github", ref, env, 3)
    finally:
        api.stop()
    session.check()


def test_gitlab_native_leaks_nothing(session: Session) -> None:
    job_token = SENTINELS["CI_JOB_TOKEN"]
    api = FakeGitLab(lifetime=200, job_token=job_token).start()
    api.access_tokens = {SENTINELS["CIENV_REPO_GITLAB_TOKEN"]}
    reg = GitLabRegistry(api.realm).start()
    api.registry = reg
    try:
        _seed_native(reg, "grp/proj")
        docker = reg.write_docker_config(session.home / "docker", "gitlab-ci-token", job_token)
        session.config_dirs.append(docker)
        env = {
            "GITLAB_CI": "true",
            "CI_SERVER_URL": api.url,
            "CI_API_V4_URL": api.api_url,
            "CI_PROJECT_ID": "7",
            "CI_PROJECT_PATH": "grp/proj",
            "CI_REGISTRY": reg.host,
            "DOCKER_CONFIG": str(docker),
        }
        ref = f"{reg.host}/grp/proj"
        _native_runs(session, "gitlab", ref, env)
        assert list_tags(reg, "grp/proj") == ["v1"]
        push_image(reg, "grp/proj", "pr-9", seed="nine", via="http")
        bad = {**env, "CIENV_REPO_GITLAB_TOKEN": WRONG, "CIENV_REPO_GITLAB_JOB_TOKEN": WRONG}
        _failing(session, "gitlab", ref, bad, 3)
        api.access_tokens = set()
        api.job_token_can_delete = False
        _failing(session, "gitlab", ref, env, 3)
    finally:
        api.stop()
        reg.close()
    session.check()


def test_dockerhub_harbor_acr_native_leak_nothing(
    registry: LocalRegistry, session: Session
) -> None:
    hub_pw = SENTINELS["CIENV_REPO_DOCKER_HUB_PASSWORD"]
    digests = _seed_native(registry, "acme/app")
    old = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    hub = FakeDockerHub("", users={"ci": hub_pw})
    hub.repos["acme/app"] = {t: (d, old) for t, d in digests.items()}
    harbor_pw = SENTINELS["CIENV_REPO_HARBOR_PASSWORD"]
    harbor = FakeHarbor("", users={"robot$ci": (harbor_pw, True), "viewer": (WRONG, False)})
    harbor.repos["proj/app"] = {
        d: Artifact(d, "2024-01-01T00:00:00Z", tags={t: False}) for t, d in digests.items()
    }
    acr_secret = SENTINELS["AZURE_CLIENT_SECRET"]
    acr = FakeAcr("", principals={"sp-app": (acr_secret, True), "reader-app": (WRONG, False)})
    for i, name in enumerate(("v1", "pr-2", "pr-3")):
        acr.add("team/app", name, name, f"2024-01-01T00:00:0{i}Z")
    acr.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", acr.aad)
    fronts = [Front(hub).start(), Front(harbor).start(), Front(acr).start()]
    acr.realm = f"{fronts[2].url}/oauth2/token"
    config = registry.write_docker_config(session.home / "docker")
    session.config_dirs.append(config)
    dc = {"DOCKER_CONFIG": str(config)}
    try:
        hub_env = {
            **dc,
            "CIENV_REPO_API_URL": fronts[0].url,
            "CIENV_REPO_DOCKER_HUB_USERNAME": "ci",
        }
        hub_env["CIENV_REPO_DOCKER_HUB_TOKEN"] = UNSET  # a token would win over user/password
        ref = f"{registry.host}/acme/app"
        _native_runs(session, "dockerhub", ref, hub_env)
        assert sorted(hub.repos["acme/app"]) == ["v1"]
        hub.repos["acme/app"]["pr-9"] = (digests["pr-2"], old)
        _failing(session, "dockerhub", ref, {**hub_env, "CIENV_REPO_DOCKER_HUB_PASSWORD": WRONG}, 3)

        harbor_env = {**dc, "CIENV_REPO_API_URL": fronts[1].url}
        harbor_env["CIENV_REPO_HARBOR_USERNAME"] = "robot$ci"
        ref = f"{registry.host}/proj/app"
        _native_runs(session, "harbor", ref, harbor_env)
        assert [a.tags for a in harbor.repos["proj/app"].values()] == [{"v1": False}]
        harbor.repos["proj/app"]["sha256:" + "9" * 64] = Artifact(
            "sha256:" + "9" * 64, "2024-01-01T00:00:00Z", tags={"pr-9": False}
        )
        _failing(session, "harbor", ref, {**harbor_env, "CIENV_REPO_HARBOR_PASSWORD": WRONG}, 3)
        viewer = {**harbor_env, "CIENV_REPO_HARBOR_USERNAME": "viewer"}
        _failing(session, "harbor", ref, {**viewer, "CIENV_REPO_HARBOR_PASSWORD": WRONG}, 3)

        acr_env = {
            "AZURE_CLIENT_ID": "sp-app",
            "AZURE_TENANT_ID": "tenant-1",
            "AZURE_AUTHORITY_HOST": fronts[2].url,
            "CIENV_REPO_AZURE_CLIENT_SECRET": acr_secret,
        }
        ref = f"{fronts[2].host}/team/app"
        _native_runs(session, "acr", ref, acr_env)
        assert sorted(acr.tags["team/app"]) == ["v1"]
        acr.add("team/app", "pr-9", "nine", "2024-01-01T00:00:09Z")
        wrong = {**acr_env, "CIENV_REPO_AZURE_CLIENT_SECRET": WRONG, "AZURE_CLIENT_SECRET": WRONG}
        _failing(session, "acr", ref, wrong, 3)
        reader = {**acr_env, "AZURE_CLIENT_ID": "reader-app"}
        reader["CIENV_REPO_AZURE_CLIENT_SECRET"] = reader["AZURE_CLIENT_SECRET"] = WRONG
        _failing(session, "acr", ref, reader, 3)
    finally:
        for front in fronts:
            front.stop()
    session.check()


@pytest.fixture
def moto_server() -> Iterator[str]:
    with motoserver.moto_server() as url:
        yield url


def test_ecr_native_leaks_nothing(moto_server: str, session: Session) -> None:
    import boto3  # noqa: PLC0415 - only this test needs it

    from tests.support.ecr_images import HOST, image_manifest, put  # noqa: PLC0415

    aws = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(session.home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(session.home / "none"),
        "DOCKER_CONFIG": str(session.home / "docker"),
    }
    client = boto3.client(
        "ecr",
        region_name="us-east-1",
        endpoint_url=moto_server,
        aws_access_key_id="testing-key-id",
        aws_secret_access_key=SENTINELS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_repository(repositoryName="app")
    put(client, "app", ["v1"], image_manifest("a"))
    put(client, "app", ["pr-2"], image_manifest("b"))
    ref = f"{HOST}/app"
    _native_runs(session, "ecr", ref, aws)
    tags = [t for d in client.describe_images(repositoryName="app")["imageDetails"]
            for t in d.get("imageTags", [])]  # fmt: skip
    assert tags == ["v1"]
    # Verifying needs the real ECR registry host (offline here): the token must still not show.
    login = session.run(["-v", "login", HOST, "--no-verify"], **aws)
    assert login.code == 0, login.describe()
    assert_private(session.home / "docker")
    session.config_dirs.append(session.home / "docker")
    dead = {**aws, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "1"}
    failed = session.run(["-v", "cleanup", "--repo", ref, *POLICY, "--max-attempts", "1"], **dead)
    assert failed.code not in (0, 2), failed.describe()
    session.check()


# --- TLS verification --------------------------------------------------------------------------


class _V2Server:
    """A minimal `/v2/` endpoint (Basic challenge, one user) on 127.0.0.1, https or http,
    recording each request and whether it carried Authorization."""

    def __init__(self, user: str, password: str, cert: tuple[Path, Path] | None) -> None:
        expected = "Basic " + _basic(user, password)
        seen: list[tuple[str, bool]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                given = self.headers.get("Authorization")
                seen.append((self.path, given is not None))
                if given == expected:
                    self.send_response(200)
                else:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="tls-test"')
                self.send_header("Content-Length", "2")
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._timer = threading.Timer(120, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()


def test_tls_is_verified_and_plain_http_needs_asking(session: Session, tmp_path: Path) -> None:
    name = loopback_name()
    if name is None:
        pytest.skip("no non-loopback-looking host name resolves to 127.0.0.1 here")
    password = SENTINELS["CIENV_REGISTRY_PASSWORD"]
    cert = self_signed(tmp_path, name)
    tls = _V2Server(GEN_USER, password, cert)
    plain = _V2Server(GEN_USER, password, None)
    config = session.home / "docker"
    session.config_dirs.append(config)
    dc = {"DOCKER_CONFIG": str(config), "NO_PROXY": f"127.0.0.1,localhost,{name}"}
    try:
        host = f"{name}:{tls.port}"
        args = ["-v", "login", host, "-u", GEN_USER, "--password-stdin"]
        refused = session.run(args, stdin=password, **dc)
        assert refused.code != 0, refused.describe()
        assert "TLS" in refused.stderr or "certificate" in refused.stderr.lower()
        assert tls.seen == [], "a request went through an unverified TLS connection"
        # --insecure-registry allows plain http, not an unverified certificate.
        still = session.run([*args, "--insecure-registry", host], stdin=password, **dc)
        assert still.code != 0, still.describe()
        assert not any(auth for _, auth in tls.seen), still.describe()
        trusted = session.run(args, stdin=password, REQUESTS_CA_BUNDLE=str(cert[0]), **dc)
        assert trusted.code == 0, trusted.describe()
        assert auth_of(config, host) == (GEN_USER, password)

        plain_host = f"{name}:{plain.port}"
        plain_args = ["-v", "login", plain_host, "-u", GEN_USER, "--password-stdin"]
        no_http = session.run(plain_args, stdin=password, **dc)
        assert no_http.code != 0, no_http.describe()
        assert not any(auth for _, auth in plain.seen), "credential sent over plain http"
        asked = session.run([*plain_args, "--insecure-registry", plain_host], stdin=password, **dc)
        assert asked.code == 0, asked.describe()
    finally:
        tls.stop()
        plain.stop()
    session.check()


# --- credentials stay with their host ------------------------------------------------------------


def test_redirect_to_another_host_drops_credentials(sreg: LocalRegistry, session: Session) -> None:
    with (
        fp.FaultProxy(sreg.url, lifetime=120) as other,
        fp.FaultProxy(sreg.url, lifetime=120) as px,
    ):
        # Blob and manifest HEADs, then GETs, through `px` are redirected to the same path on
        # `other` (the same registry behind it, but another host:port). The client may fail
        # (the other host wants its own login), but it must not hand it this host's password.
        config = write_auth_config(
            session.home / "docker", {px.host: (GEN_USER, SENTINELS["CIENV_REGISTRY_PASSWORD"])}
        )
        session.config_dirs.append(config)
        for method in ("HEAD", "GET"):
            px.clear()
            for kind in ("blobs", "manifests"):
                px.add(fp.redirect(other.url + "{path}", method=method, path=rf"/{kind}/", times=2))
            result = session.run(
                ["-v", "cleanup", "--repo", f"{px.host}/{REPO}", "--dry-run", "--keep-latest",
                 "1", "--keep-newer-than", "0s", "--max-attempts", "2"],
                DOCKER_CONFIG=str(config),
            )  # fmt: skip
            assert TRACEBACK not in result.output
            assert result.code in (0, 1, 3), result.describe()
            if method == "HEAD":  # tags are resolved by GET (content-hashed): none to redirect
                assert not [r for r in px.records if r.method == "HEAD"], "a HEAD was sent"
                continue
            assert [r for r in other.records if r.method == method], f"no {method} redirected"
        assert px.injected("redirect") >= 2
        leaked = [(r.method, r.path) for r in other.records if r.authorization]
        assert not leaked, f"credentials sent to another host: {leaked}"
    session.check()
