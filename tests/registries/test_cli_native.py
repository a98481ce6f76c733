"""The real CLI (`ci-env detect`, `cleanup --dry-run`, `cleanup`) per registry kind, end to end.

Each case runs `python -m ci_env` as a subprocess against the fake of the kind's documented
API on a loopback socket (`tests.fakes._front.Front`), with the registry side — manifests,
digests, throwaway untags — served by the real local `docker-registry`. Every case seeds the
same images and runs the same name-only policy (`--keep-newer-than 0s --delete-tag 'pr-.*'`):

    X: v1, pr-1   -> pr-1 untagged (X is kept by v1)
    Y: pr-2       -> deleted
    Z: pr-3, pr-4 -> deleted (both tags, one operation)
    W: main       -> kept

and checks the report says exactly that, the dry run changed nothing, and afterwards the
registry (the fake's state, mirrored into the real registry where the kind deletes there)
holds exactly v1 -> X and main -> W. Credentials go through the environment, never argv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes._front import Front
from tests.fakes.acr_api import AAD_SCHEMA, FakeAcr
from tests.fakes.artifactory_api import FakeArtifactory
from tests.fakes.dockerhub_api import FakeDockerHub
from tests.fakes.google_registry import GoogleRegistry
from tests.fakes.harbor_api import Artifact, FakeHarbor
from tests.fakes.quay_api import FakeQuay
from tests.fakes.selectel_api import IDENTITY_SCHEMA, FakeSelectel
from tests.support.images import manifest_exists, push_image
from tests.support.native_seed import real_state, seed
from tests.support.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
POLICY = ["--keep-newer-than", "0s", "--delete-tag", "pr-.*"]
EXPECTED = {
    "v1": "kept",
    "main": "kept",
    "pr-1": "untagged",
    "pr-2": "deleted",
    "pr-3": "deleted",
    "pr-4": "deleted",
}
OLD = "2024-01-01T00:00:00Z"


@dataclass
class Case:
    ref: str  # the repository address the CLI gets
    env: dict[str, str]
    state: Callable[[], dict[str, str]]  # tag -> digest as the registry now serves them
    gone: Callable[[str], bool] | None = None  # is the manifest deleted? (default: untagged)
    detect: tuple[str, ...] = ()  # `ci-env detect` arguments (canonical host, no loopback)
    extra: list[str] = field(default_factory=list)  # more cleanup options
    expected_extra: dict[str | None, str] = field(default_factory=dict)
    fronts: list[Front] = field(default_factory=list)
    check: Callable[[], None] = lambda: None  # the kind's own API did the work


def drop_tag_on_disk(reg: LocalRegistry, repo: str, name: str) -> None:
    path = reg.storage / "docker/registry/v2/repositories" / repo / "_manifests/tags" / name
    shutil.rmtree(path)


def docker_config(tmp: Path, host: str, reg: LocalRegistry) -> str:
    directory = tmp / "docker"
    directory.mkdir(mode=0o700, exist_ok=True)
    auths = {"auths": {host: {"auth": reg.auth_entry()}}}
    (directory / "config.json").write_text(json.dumps(auths))
    (directory / "config.json").chmod(0o600)
    return str(directory)


# --- one builder per kind -------------------------------------------------------------------


def _dockerhub(reg: LocalRegistry, tmp: Path) -> Case:
    digests = seed(reg, "acme/app")
    from datetime import UTC, datetime

    hub = FakeDockerHub("")
    hub.repos["acme/app"] = {t: (d, datetime(2024, 1, 1, tzinfo=UTC)) for t, d in digests.items()}
    front = Front(hub).start()
    env = {
        "CIENV_REPO_API_URL": front.url,
        "CIENV_REPO_DOCKER_HUB_USERNAME": "ci",
        "CIENV_REPO_DOCKER_HUB_PASSWORD": "hub-password",
    }
    state = lambda: {t: d for t, (d, _) in hub.repos["acme/app"].items()}  # noqa: E731
    case = Case(f"{reg.host}/acme/app", env, state, detect=("docker.io/acme/app",), fronts=[front])
    case.check = lambda: _equal(hub.calls("DELETE", "/tags/"), 4)
    return case


def _equal(found: object, expected: object) -> None:
    assert found == expected


def _quay(reg: LocalRegistry, tmp: Path) -> Case:
    digests = seed(reg, "acme/app")
    quay = FakeQuay("")
    quay.repos["acme/app"] = {t: (d, 1_700_000_000) for t, d in digests.items()}
    front = Front(quay).start()
    env = {"CIENV_REPO_API_URL": front.url, "CIENV_REPO_QUAY_TOKEN": "quay-rw"}
    state = lambda: {t: d for t, (d, _) in quay.repos["acme/app"].items()}  # noqa: E731
    case = Case(f"{reg.host}/acme/app", env, state, detect=("quay.io/acme/app",), fronts=[front])
    case.check = lambda: _equal(
        sorted(t for _, t, _ in quay.history), ["pr-1", "pr-2", "pr-3", "pr-4"]
    )
    return case


def _harbor(reg: LocalRegistry, tmp: Path) -> Case:
    digests = seed(reg, "proj/team/app")
    harbor = FakeHarbor("")
    artifacts: dict[str, Artifact] = {}
    for name, digest in digests.items():
        artifacts.setdefault(digest, Artifact(digest, OLD)).tags[name] = False
    harbor.repos["proj/team/app"] = artifacts
    front = Front(harbor).start()
    env = {
        "CIENV_REPO_API_URL": front.url,
        "CIENV_REPO_HARBOR_USERNAME": "robot$ci",
        "CIENV_REPO_HARBOR_PASSWORD": "robot-secret",
    }

    def state() -> dict[str, str]:
        return {t: a.digest for a in harbor.repos["proj/team/app"].values() for t in a.tags}

    def gone(digest: str) -> bool:
        return digest not in harbor.repos["proj/team/app"]

    ref = f"{reg.host}/proj/team/app"
    case = Case(ref, env, state, gone, detect=("harbor.example.com/proj/app",), fronts=[front])
    # One tag delete (pr-1) and one artifact delete each for Y and Z.
    case.check = lambda: _equal(
        (harbor.calls("DELETE", "/tags/"), harbor.calls("DELETE", "/artifacts/sha256")), (1, 3)
    )
    return case


def _acr(reg: LocalRegistry, tmp: Path) -> Case:
    acr = FakeAcr("")
    repo = "team/app"
    for name, seed_name, when in (
        ("v1", "x", "2024-01-01T00:00:01Z"),
        ("pr-1", "x", "2024-01-01T00:00:02Z"),
        ("pr-2", "y", "2024-01-01T00:00:03Z"),
        ("pr-3", "z", "2024-01-01T00:00:04Z"),
        ("pr-4", "z", "2024-01-01T00:00:05Z"),
        ("main", "w", "2024-01-01T00:00:06Z"),
    ):
        acr.add(repo, name, seed_name, when)
    acr.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", acr.aad, AAD_SCHEMA)
    front = Front(acr).start()
    acr.realm = f"{front.url}/oauth2/token"
    env = {
        "AZURE_CLIENT_ID": "sp-app",
        "AZURE_CLIENT_SECRET": "sp-secret",
        "AZURE_TENANT_ID": "tenant-1",
        "AZURE_AUTHORITY_HOST": front.url,
    }
    state = lambda: {t: d for t, (d, _, _) in acr.tags[repo].items()}  # noqa: E731
    gone = lambda digest: digest not in acr.manifests[repo]  # noqa: E731
    ref = f"{front.host}/{repo}"
    case = Case(ref, env, state, gone, detect=("myreg.azurecr.io/team/app",), fronts=[front])
    # The service principal went through AZURE_AUTHORITY_HOST (once per run); pr-1 was
    # untagged through the tag API, Y and Z deleted by digest — each request once: after the
    # listing's challenge, the `repository:<repo>:delete` token is fetched before deleting.
    case.check = lambda: _equal(
        (
            acr.calls("POST", "/tenant-1/oauth2/v2.0/token"),
            acr.calls("DELETE", "/_tags/"),
            acr.calls("DELETE", "/manifests/sha256"),
        ),
        (2, 1, 2),
    )
    return case


def _selectel(reg: LocalRegistry, tmp: Path) -> Case:
    digests = seed(reg, "acme/app")
    selectel = FakeSelectel("")
    selectel.images = {("reg-1", "app", digests["pr-2"]), ("reg-1", "app", digests["pr-3"])}
    selectel.route("POST", r"/identity/v3/auth/tokens", selectel.identity, IDENTITY_SCHEMA)

    def mirror(registry: str, image: str, digest: str) -> None:
        reg.session().delete(f"/v2/{registry}/{image}/manifests/{digest}").raise_for_status()

    selectel.on_delete = mirror
    front = Front(selectel).start()
    env = {
        "CIENV_REPO_API_URL": front.url,
        "CIENV_REPO_SELECTEL_IDENTITY_URL": f"{front.url}/identity/v3",
        "CIENV_REPO_SELECTEL_USERNAME": "svc",
        "CIENV_REPO_SELECTEL_PASSWORD": "svc-pw",
        "CIENV_REPO_SELECTEL_ACCOUNT": "12345",
        "CIENV_REPO_SELECTEL_VPC": "my-project",
        # The backend paces to 2 requests/s by default; the loopback fake has no limit.
        "CIENV_MAX_REQUESTS_PER_SECOND": "100",
    }
    case = Case(
        f"{reg.host}/acme/app",
        env,
        lambda: real_state(reg, "acme/app"),
        lambda digest: not manifest_exists(reg, "acme/app", digest),
        detect=("cr.selcloud.ru/acme/app",),
        fronts=[front],
    )
    case.check = lambda: _equal((selectel.images, selectel.calls("DELETE")), (set(), 2))
    return case


def _artifactory(reg: LocalRegistry, tmp: Path) -> Case:
    repo = "docker-local/team/app"
    digests = seed(reg, repo)
    fake = FakeArtifactory("", tags={f"{repo}/{name}" for name in digests})
    fake.on_delete = lambda path: drop_tag_on_disk(reg, repo, path.rsplit("/", 1)[1])
    front = Front(fake, registry=reg).start()
    env = {"CIENV_DOCKER_CONFIG": docker_config(tmp, front.host, reg)}
    case = Case(
        f"{front.host}/{repo}",
        env,
        lambda: real_state(reg, repo),
        lambda digest: not manifest_exists(reg, repo, digest),
        detect=("acme.jfrog.io/docker-local/app",),
        fronts=[front],
    )
    case.check = lambda: _equal(fake.deleted, [f"{repo}/pr-1"])
    return case


def _google(detect_ref: str) -> Callable[[LocalRegistry, Path], Case]:
    def build(reg: LocalRegistry, tmp: Path) -> Case:
        repo = "proj/app"
        seed(reg, repo)
        # An untagged manifest, which only Google's manifest map lists.
        untagged = push_image(reg, repo, "tmp", seed=f"{repo}-u", via="http")
        drop_tag_on_disk(reg, repo, "tmp")
        google = GoogleRegistry("", registry=reg)
        front = Front(google, registry=reg).start()
        env = {"CIENV_DOCKER_CONFIG": docker_config(tmp, front.host, reg)}
        case = Case(
            f"{front.host}/{repo}",
            env,
            lambda: google.tags_on_disk(repo),
            lambda digest: not manifest_exists(reg, repo, digest),
            detect=(detect_ref,),
            extra=["--untagged", "delete"],
            expected_extra={None: "deleted"},
            fronts=[front],
        )
        case.env["_UNTAGGED"] = untagged
        # pr-1 untagged by tag; Y and Z refused as dangling, their tags removed, then deleted.
        case.check = lambda: _equal(
            (sorted(google.tag_deletes), google.dangling_refusals),
            (["pr-1", "pr-2", "pr-3", "pr-4"], 2),
        )
        return case

    return build


def _plain(repo: str, detect: tuple[str, ...]) -> Callable[[LocalRegistry, Path], Case]:
    def build(reg: LocalRegistry, tmp: Path) -> Case:
        seed(reg, repo)
        env = {"CIENV_DOCKER_CONFIG": docker_config(tmp, reg.host, reg)}
        return Case(
            f"{reg.host}/{repo}",
            env,
            lambda: real_state(reg, repo),
            lambda digest: not manifest_exists(reg, repo, digest),
            detect=detect,
        )

    return build


BUILDERS: dict[str, Callable[[LocalRegistry, Path], Case]] = {
    "dockerhub": _dockerhub,
    "quay": _quay,
    "harbor": _harbor,
    "acr": _acr,
    "selectel": _selectel,
    "artifactory": _artifactory,
    "gcr": _google("gcr.io/proj/app"),
    "gar": _google("europe-docker.pkg.dev/proj/repo/app"),
    "nexus": _plain("docker-hosted/team/app", ("nexus.example.com/docker-hosted/app",)),
    "yandex": _plain("crp0123456789/app", ("cr.yandex/crp0123456789/app",)),
}


# --- running the CLI ----------------------------------------------------------------------


def cli(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp / "home"),
        "PYTHONPATH": str(ROOT),
        "NO_PROXY": "127.0.0.1",
        **{k: v for k, v in env.items() if not k.startswith("_")},
    }
    return subprocess.run(
        [sys.executable, "-m", "ci_env", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        cwd=tmp,
    )


def report_actions(path: Path) -> dict[str | None, str]:
    report = json.loads(path.read_text())
    return {
        item["tag"]: item["action"] for repo in report["repositories"] for item in repo["items"]
    }


@pytest.fixture
def case(request: pytest.FixtureRequest, registry: LocalRegistry, tmp_path: Path) -> Iterator[Case]:
    (tmp_path / "home").mkdir()
    built = BUILDERS[request.param](registry, tmp_path)
    if "CIENV_DOCKER_CONFIG" not in built.env:
        built.env["CIENV_DOCKER_CONFIG"] = docker_config(tmp_path, registry.host, registry)
    try:
        yield built
    finally:
        for front in built.fronts:
            front.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(BUILDERS), indirect=True)
def test_detect_dry_run_and_cleanup(
    case: Case, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    kind = request.node.callspec.params["case"]
    env = dict(case.env)
    override = ["--repo-container-registry", kind] if kind == "nexus" else []
    shown = cli(tmp_path, {}, "detect", *case.detect, *override, "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["kind"] == kind

    env["CIENV_REPO_CONTAINER_REGISTRY"] = kind
    before = case.state()
    expected: dict[str | None, str] = {**EXPECTED, **case.expected_extra}
    args = ["cleanup", "--repo", case.ref, *POLICY, *case.extra]

    dry = cli(tmp_path, env, *args, "--dry-run", "--report-json", "dry.json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    would = {"deleted": "would-delete", "untagged": "would-untag", "kept": "kept"}
    assert report_actions(tmp_path / "dry.json") == {t: would[a] for t, a in expected.items()}
    assert case.state() == before

    done = cli(tmp_path, env, *args, "--report-json", "run.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert report_actions(tmp_path / "run.json") == expected
    assert case.state() == {"v1": before["v1"], "main": before["main"]}
    case.check()
    gone = case.gone or (lambda digest: digest not in case.state().values())
    assert gone(before["pr-2"])
    assert gone(before["pr-3"])
    assert not gone(before["v1"])
    assert not gone(before["main"])
    if "_UNTAGGED" in case.env:
        assert gone(case.env["_UNTAGGED"])
    for secret in ("hub-password", "quay-rw", "robot-secret", "sp-secret", "svc-pw"):
        assert secret not in dry.stdout + dry.stderr + done.stdout + done.stderr
