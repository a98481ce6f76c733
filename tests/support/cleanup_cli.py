"""`ci-env cleanup` of one repository of the local registry through the real CLI, and its
images pushed as of 2024 (shared by tests/commands/test_cleanup.py and test_cleanup_inuse.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from tests.support import images
from tests.support.clirun import base_env, run_cli
from tests.support.registry import LocalRegistry

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
REPO = "grp/app"


def cli_env(tmp_path: Path, reg: LocalRegistry, host: str | None = None) -> dict[str, str]:
    config = tmp_path / "docker"
    config.mkdir(mode=0o700, exist_ok=True)
    entry = {"auths": {host or reg.host: {"auth": reg.auth_entry()}}}
    (config / "config.json").write_text(json.dumps(entry))
    return base_env(tmp_path, DOCKER_CONFIG=str(config))


def cleanup(env: dict[str, str], host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("cleanup", "--repo", f"{host}/{REPO}", *args, env=env, timeout=120)


def exists(reg: LocalRegistry, ref: str) -> bool:
    return images.skopeo_inspect(reg, ref) is not None


def push(reg: LocalRegistry, tag: str, **kw: object) -> str:
    return images.push_image(reg, REPO, tag, created=OLD, via="http", **kw)  # type: ignore[arg-type]


def push_untagged(reg: LocalRegistry, seed: str, arch: str) -> str:
    """A platform manifest pushed by digest only, as buildx pushes index children."""
    manifest, blobs = images.build_image(seed, OLD, "oci", arch)
    session = reg.session()
    for blob_digest, data in blobs.items():
        images.push_blob(session, REPO, blob_digest, data)
    digest = images.sha256(manifest)
    return images.push_manifest(session, REPO, digest, manifest, images.OCI_MANIFEST)
