"""Deletion safety while others push: every scenario of issue 13 on the real registry.

Each test makes the registry change at the worst moment (between `--plan-out` and
`--apply-plan`, from a fault-proxy hook while `ci-env cleanup` is still planning or between
its two waves, or with a proxy whose headers lie) and checks with skopeo afterwards that the
kept tag and what it needs are still there. Each one deletes the kept image on the code before
the pre-deletion re-check.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import images
from tests.support.cleanup_cli import cli_env
from tests.support.faultproxy import FaultProxy, hook, override_headers
from tests.support.harness import Result, run_cli
from tests.support.registry import LocalRegistry

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
REPO = "live/app"
pytestmark = pytest.mark.slow


def cleanup(env: dict[str, str], host: str, *args: str) -> Result:
    return run_cli(["cleanup", "--repo", f"{host}/{REPO}", *args], env, timeout=120)


def push(reg: LocalRegistry, tag: str, **kw: Any) -> str:
    return images.push_image(reg, REPO, tag, created=OLD, via="http", **kw)


def push_untagged(reg: LocalRegistry, seed: str, arch: str) -> str:
    manifest, blobs = images.build_image(seed, OLD, "oci", arch)
    session = reg.session()
    for blob_digest, data in blobs.items():
        images.push_blob(session, REPO, blob_digest, data)
    return images.push_manifest(
        session, REPO, images.sha256(manifest), manifest, images.OCI_MANIFEST
    )


def exists(reg: LocalRegistry, ref: str) -> bool:
    return images.skopeo_inspect(reg, ref) is not None


def resolve(reg: LocalRegistry, tag: str) -> str | None:
    answer = reg.session().head(
        f"/v2/{REPO}/manifests/{tag}", headers={"Accept": images.ACCEPT}, timeout=30
    )
    return answer.headers.get("Docker-Content-Digest") if answer.status_code == 200 else None


def rows(report: Path) -> dict[str, dict[str, Any]]:
    items = json.loads(report.read_text())["repositories"][0]["items"]
    return {item["tag"] or item["digest"]: item for item in items}


def plan_then(reg: LocalRegistry, tmp_path: Path, *args: str) -> tuple[dict[str, str], Path]:
    env = cli_env(tmp_path, reg)
    plan = tmp_path / "plan.json"
    made = cleanup(env, reg.host, *args, "--dry-run", "--plan-out", str(plan))
    assert made.code == 0, made.describe()
    return env, plan


def apply_plan(env: dict[str, str], plan: Path, report: Path) -> Result:
    return run_cli(
        ["cleanup", "--apply-plan", str(plan), "--report-json", str(report)], env, timeout=120
    )


def test_a_tag_promoted_between_plan_and_apply_keeps_its_digest(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    push(registry, "v1")
    doomed = push(registry, "pr-1")
    env, plan = plan_then(registry, tmp_path, "--delete-tag", "pr-.*")
    images.tag(registry, REPO, "pr-1", "release-9")  # a promotion, as `crane tag` does
    report = tmp_path / "report.json"
    done = apply_plan(env, plan, report)
    assert done.code == 0, done.describe()
    assert images.skopeo_inspect(registry, f"{REPO}:release-9") is not None
    assert exists(registry, f"{REPO}@{doomed}")
    assert images.list_tags(registry, REPO) == ["release-9", "v1"]
    row = rows(report)["pr-1"]
    assert row["action"] == "untagged"
    assert "tag release-9 appeared since planning" in row["reason"]


def test_a_kept_tag_rolled_back_onto_a_planned_digest_survives_apply_plan(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    before = push(registry, "stable")
    doomed = push(registry, "pr-1")
    env, plan = plan_then(registry, tmp_path, "--delete-tag", "pr-.*")
    images.tag(registry, REPO, "pr-1", "stable")  # a rollback moves the kept tag
    report = tmp_path / "report.json"
    done = apply_plan(env, plan, report)
    assert done.code == 0, done.describe()
    assert images.skopeo_inspect(registry, f"{REPO}:stable") is not None
    assert resolve(registry, "stable") == doomed
    assert exists(registry, f"{REPO}@{doomed}")
    assert exists(registry, f"{REPO}@{before}")
    assert images.list_tags(registry, REPO) == ["stable"]
    assert "tag stable moved onto it since planning" in rows(report)["pr-1"]["reason"]


def test_a_tag_pushed_while_planning_keeps_its_digest(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    push(registry, "v1")
    doomed = push(registry, "pr-1")
    push(registry, "pr-2")
    report = tmp_path / "report.json"
    with FaultProxy(registry.url, lifetime=120) as proxy:
        # Another job pushes release-7 onto pr-1's digest right after the tags were listed.
        proxy.add(
            hook(
                lambda method, path: images.tag(registry, REPO, "pr-1", "release-7"),
                method="GET",
                path="/manifests/v1$",
            )
        )
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--delete-tag", "pr-.*", "--report-json", str(report))
        assert proxy.injected("hook") == 1
    assert done.code == 0, done.describe()
    assert images.skopeo_inspect(registry, f"{REPO}:release-7") is not None
    assert exists(registry, f"{REPO}@{doomed}")
    assert images.list_tags(registry, REPO) == ["release-7", "v1"]
    found = rows(report)
    assert found["pr-1"]["action"] == "untagged"
    assert found["pr-2"]["action"] == "deleted"
    assert "tag release-7 appeared since planning" in found["pr-1"]["reason"]


def test_a_new_index_reusing_a_child_of_a_deleted_index_keeps_the_child(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    push(registry, "v1")
    shared = push_untagged(registry, "shared", "amd64")
    own = push_untagged(registry, "own", "arm64")
    old_index = images.push_index(registry, REPO, "pr-1", [shared, own])
    report = tmp_path / "report.json"
    made: list[str] = []

    def push_new_index(method: str, path: str) -> None:
        made.append(images.push_index(registry, REPO, "release-8", [shared]))

    with FaultProxy(registry.url, lifetime=120) as proxy:
        # While the first wave deletes the old index, a build pushes a new one over `shared`.
        proxy.add(hook(push_new_index, method="DELETE", path=f"/manifests/{old_index}"))
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--delete-tag", "pr-.*", "--report-json", str(report))
    assert done.code == 0, done.describe()
    assert made, "the hook did not run"
    raw = images.skopeo_inspect(registry, f"{REPO}:release-8")
    assert raw is not None
    assert [m["digest"] for m in raw["manifests"]] == [shared]
    assert exists(registry, f"{REPO}@{shared}")
    assert not exists(registry, f"{REPO}@{own}")
    assert not exists(registry, f"{REPO}@{old_index}")
    assert "tag release-8 appeared since planning" in rows(report)[shared]["reason"]


def test_swapped_digest_headers_fail_the_repository_closed(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    kept = push(registry, "stable")
    doomed = push(registry, "pr-1")
    report = tmp_path / "report.json"
    with FaultProxy(registry.url, lifetime=120) as proxy:
        # A caching proxy with the digests of a kept and a doomed tag swapped.
        proxy.add(
            override_headers({"Docker-Content-Digest": doomed}, path="/manifests/stable$"),
            override_headers({"Docker-Content-Digest": kept}, path="/manifests/pr-1$"),
        )
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--delete-tag", "pr-.*", "--report-json", str(report))
        assert proxy.count("DELETE") == 0
    assert done.code == 1, done.describe()
    assert "pr-1" in done.stdout
    assert "FAILED CLOSED" in done.stdout
    assert "Traceback" not in done.output
    assert exists(registry, f"{REPO}:stable")
    assert exists(registry, f"{REPO}@{kept}")
    assert images.list_tags(registry, REPO) == ["pr-1", "stable"]
    assert "tag pr-1" in json.loads(report.read_text())["repositories"][0]["error"]


def test_a_kept_index_served_as_plain_json_keeps_its_child(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    child = push(registry, "amd", arch="amd64")
    index = images.push_index(registry, REPO, "v1", [child])
    with FaultProxy(registry.url, lifetime=120) as proxy:
        proxy.add(
            override_headers({"Content-Type": "application/json"}, path=f"/manifests/(v1|{index})$")
        )
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--delete-tag", "amd", "--keep-newer-than", "0s")
    assert done.code == 0, done.describe()
    assert images.list_tags(registry, REPO) == ["v1"]
    raw = images.skopeo_inspect(registry, f"{REPO}:v1")
    assert raw is not None
    assert exists(registry, f"{REPO}@{child}")


def test_digest_headers_swapped_on_head_only_cannot_mislead_a_listing_by_get(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """The listing resolves tags by GET and hashes the bodies: HEADs that lie (swapped
    digests) are never asked, so the kept tag keeps its image and only pr-1 goes."""
    kept = push(registry, "stable")
    doomed = push(registry, "pr-1")
    report = tmp_path / "report.json"
    with FaultProxy(registry.url, lifetime=120) as proxy:
        proxy.add(
            override_headers(
                {"Docker-Content-Digest": doomed}, method="HEAD", path="/manifests/stable$"
            ),
            override_headers(
                {"Docker-Content-Digest": kept}, method="HEAD", path="/manifests/pr-1$"
            ),
        )
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--delete-tag", "pr-.*", "--report-json", str(report))
        assert proxy.count("HEAD", "/manifests/") == 0
    assert done.code == 0, done.describe()
    assert "Traceback" not in done.output
    assert images.skopeo_inspect(registry, f"{REPO}:stable") is not None
    assert exists(registry, f"{REPO}@{kept}")
    assert not exists(registry, f"{REPO}@{doomed}")
    assert rows(report)["pr-1"]["action"] == "deleted"
