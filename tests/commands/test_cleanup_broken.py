"""`--on-broken skip` end to end: a kept index whose child another tool deleted (common on GHCR).

The child is deleted by digest on the real registry, so it answers 404 MANIFEST_UNKNOWN exactly
as distribution does; results are checked with skopeo.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from tests.support import images
from tests.support.clirun import base_env, run_cli
from tests.support.faultproxy import FaultProxy, status
from tests.support.registry import LocalRegistry

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
REPO = "grp/broken"
pytestmark = pytest.mark.slow


def cli_env(
    tmp_path: Path, reg: LocalRegistry, host: str | None = None, **extra: str
) -> dict[str, str]:
    config = tmp_path / "docker"
    config.mkdir(mode=0o700, exist_ok=True)
    entry = {"auths": {host or reg.host: {"auth": reg.auth_entry()}}}
    (config / "config.json").write_text(json.dumps(entry))
    return base_env(tmp_path, DOCKER_CONFIG=str(config), **extra)


def cleanup(env: dict[str, str], host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "cleanup", "--repo", f"{host}/{REPO}", "--delete-tag", "pr-.*", *args, env=env, timeout=120
    )


def untagged(reg: LocalRegistry, seed: str, arch: str) -> str:
    manifest, blobs = images.build_image(seed, OLD, "oci", arch)
    session = reg.session()
    for blob_digest, data in blobs.items():
        images.push_blob(session, REPO, blob_digest, data)
    return images.push_manifest(
        session, REPO, images.sha256(manifest), manifest, images.OCI_MANIFEST
    )


def broken_repository(reg: LocalRegistry) -> tuple[str, str, str]:
    """v1: an index over amd and arm, arm deleted behind its back; pr-1: an old image."""
    amd, arm = untagged(reg, "amd", "amd64"), untagged(reg, "arm", "arm64")
    index = images.push_index(reg, REPO, "v1", [amd, arm])
    gone = reg.session().delete(f"/v2/{REPO}/manifests/{arm}", timeout=30)
    assert gone.status_code == 202
    images.push_image(reg, REPO, "pr-1", created=OLD, via="http")
    return index, amd, arm


def test_a_broken_kept_index_fails_closed_by_default(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    broken_repository(registry)
    done = cleanup(cli_env(tmp_path, registry), registry.host)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED CLOSED" in done.stdout
    assert "--on-broken skip" in done.stdout
    assert images.list_tags(registry, REPO) == ["pr-1", "v1"]


def test_on_broken_skip_cleans_the_rest_and_names_the_broken_tag(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    index, amd, arm = broken_repository(registry)
    summary = tmp_path / "summary.md"
    report = tmp_path / "report.json"
    env = cli_env(tmp_path, registry, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    done = cleanup(env, registry.host, "--on-broken", "skip", "--report-json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert images.skopeo_inspect(registry, f"{REPO}:pr-1") is None
    assert images.skopeo_inspect(registry, f"{REPO}:v1") is not None
    assert images.skopeo_inspect(registry, f"{REPO}@{amd}") is not None
    assert f"BROKEN, left alone: v1: needs {arm}" in done.stdout
    assert "::error::broken, left alone: " in done.stdout
    assert ":v1: needs" in done.stdout
    assert "broken, left alone" in summary.read_text()
    repo = json.loads(report.read_text())["repositories"][0]
    assert repo["error"] is None
    assert repo["broken"] == [f"v1: needs {arm}, which answers 404 MANIFEST_UNKNOWN"]


def test_policy_broken_skip_and_a_5xx_still_fails_closed(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    index, amd, arm = broken_repository(registry)
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\nbroken: skip\n")
    with FaultProxy(registry.url, lifetime=120) as proxy:
        # Not a definite 404: the child may be there after all, so nothing may go.
        proxy.add(status(503, times=None, method="GET", path=f"/manifests/{arm}"))
        env = cli_env(tmp_path, registry, proxy.host)
        failed = cleanup(env, proxy.host, "--policy", str(policy), "--max-retry-seconds", "2")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED CLOSED" in failed.stdout
    assert images.list_tags(registry, REPO) == ["pr-1", "v1"]
    done = cleanup(cli_env(tmp_path, registry), registry.host, "--policy", str(policy))
    assert done.returncode == 0, done.stdout + done.stderr
    assert images.list_tags(registry, REPO) == ["v1"]
