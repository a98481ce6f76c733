"""`ci-env cleanup` end to end on the real local registry, checked with skopeo afterwards.

Each digest-graph rule has an image set built for it: shared digests, multi-arch indexes
(nested too), OCI referrers with the `sha256-<hex>` fallback tag and cosign `.sig` tags.
Faults (a 500 on one DELETE, a 403 mid-run, an unreadable kept index) come from the fault
proxy in front of the registry.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from tests.support import images
from tests.support.cleanup_cli import OLD, REPO, cleanup, cli_env, exists, push, push_untagged
from tests.support.clirun import run_cli
from tests.support.faultproxy import FaultProxy, hook, status
from tests.support.registry import LocalRegistry
from tests.support.tools import check_jsonschema


@pytest.mark.slow
def test_shared_digest_is_untagged_and_dry_run_changes_nothing(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    shared = push(registry, "v1")
    images.tag(registry, REPO, "v1", "pr-1")
    other = push(registry, "pr-2")
    env = cli_env(tmp_path, registry)
    dry = cleanup(env, registry.host, "--delete-tag", "pr-.*", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would-untag   pr-1" in dry.stdout
    assert "would-delete  pr-2" in dry.stdout
    assert images.list_tags(registry, REPO) == ["pr-1", "pr-2", "v1"]

    done = cleanup(env, registry.host, "--delete-tag", "pr-.*")
    assert done.returncode == 0, done.stderr
    assert "1 kept, 1 deleted, 1 untagged" in done.stdout
    assert images.list_tags(registry, REPO) == ["v1"]
    assert exists(registry, f"{REPO}:v1")
    assert exists(registry, f"{REPO}@{shared}")
    assert not exists(registry, f"{REPO}@{other}")


@pytest.mark.slow
def test_children_of_kept_indexes_survive(registry: LocalRegistry, tmp_path: Path) -> None:
    amd, arm = push(registry, "amd", arch="amd64"), push(registry, "arm", arch="arm64")
    s390 = push(registry, "s390", arch="s390x")
    inner = images.push_index(registry, REPO, None, [arm])  # nested index
    kept = images.push_index(registry, REPO, "v1", [amd, inner])
    gone = images.push_index(registry, REPO, "pr-1", [amd, s390])
    env = cli_env(tmp_path, registry)
    # amd/arm/s390 are tags too: amd's digest is a child of the kept index -> only untagged.
    done = cleanup(
        env,
        registry.host,
        "--delete-tag",
        "pr-.*|amd|arm|s390",
        "--keep-newer-than",
        "0s",
        "--verbose",
    )
    assert done.returncode == 0, done.stderr
    assert images.list_tags(registry, REPO) == ["v1"]
    for digest in (kept, amd, inner, arm):
        assert exists(registry, f"{REPO}@{digest}"), digest
    assert not exists(registry, f"{REPO}@{gone}")
    assert not exists(registry, f"{REPO}@{s390}")
    raw = images.skopeo_inspect(registry, f"{REPO}:v1")
    assert raw is not None
    assert len(raw["manifests"]) == 2


@pytest.mark.slow
def test_children_of_a_deleted_index_go_after_it(registry: LocalRegistry, tmp_path: Path) -> None:
    shared = push_untagged(registry, "shared", "amd64")
    own, nested_child = (
        push_untagged(registry, "own", "arm64"),
        push_untagged(registry, "n", "s390x"),
    )
    nested = images.push_index(registry, REPO, None, [nested_child])
    kept = images.push_index(registry, REPO, "v1", [shared])
    gone = images.push_index(registry, REPO, "pr-1", [shared, own, nested])
    env = cli_env(tmp_path, registry)
    done = cleanup(env, registry.host, "--delete-tag", "pr-.*", "--verbose")
    assert done.returncode == 0, done.stderr
    assert images.list_tags(registry, REPO) == ["v1"]
    for digest in (kept, shared):
        assert exists(registry, f"{REPO}@{digest}"), digest
    for digest in (gone, own, nested, nested_child):
        assert not exists(registry, f"{REPO}@{digest}"), digest


@pytest.mark.slow
def test_referrers_go_with_their_subject(registry: LocalRegistry, tmp_path: Path) -> None:
    kept, dead = push(registry, "v1"), push(registry, "pr-1")
    images.push_referrer(registry, REPO, kept)
    images.push_referrer(registry, REPO, dead)
    images.push_cosign_signature(registry, REPO, dead)
    images.push_cosign_signature(registry, REPO, kept)
    env = cli_env(tmp_path, registry)
    done = cleanup(env, registry.host, "--delete-tag", "pr-.*|sha256-.*")
    assert done.returncode == 0, done.stderr
    fallback_kept = kept.replace(":", "-")
    assert images.list_tags(registry, REPO) == sorted(["v1", fallback_kept, fallback_kept + ".sig"])
    assert exists(registry, f"{REPO}:{fallback_kept}")
    assert not exists(registry, f"{REPO}@{dead}")


@pytest.mark.slow
def test_keep_orphan_referrers(registry: LocalRegistry, tmp_path: Path) -> None:
    dead = push(registry, "pr-1")
    images.push_cosign_signature(registry, REPO, dead)
    env = cli_env(tmp_path, registry)
    done = cleanup(env, registry.host, "--delete-tag", "pr-.*", "--keep-orphan-referrers")
    assert done.returncode == 0, done.stderr
    assert images.list_tags(registry, REPO) == [dead.replace(":", "-") + ".sig"]


@pytest.mark.slow
def test_unreadable_kept_index_fails_closed(registry: LocalRegistry, tmp_path: Path) -> None:
    child = push(registry, "child")
    # v1's own manifest comes with the listing's GET by tag: the walk reads the untagged
    # inner index by digest, and that read fails.
    inner = images.push_index(registry, REPO, None, [child])
    images.push_index(registry, REPO, "v1", [inner])
    push(registry, "pr-1")
    report = tmp_path / "report.json"
    with FaultProxy(registry.url) as proxy:
        proxy.add(status(500, times=None, method="GET", path=f"/manifests/{inner}"))
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(
            env,
            proxy.host,
            "--delete-tag",
            "pr-.*|child",
            "--max-retry-seconds",
            "3",
            "--report-json",
            str(report),
        )
    assert done.returncode == 1
    assert "kept tag v1" in done.stdout
    assert "FAILED CLOSED" in done.stdout
    assert images.list_tags(registry, REPO) == ["child", "pr-1", "v1"]
    data = json.loads(report.read_text())
    assert "kept tag v1" in data["repositories"][0]["error"]


@pytest.mark.slow
def test_plan_out_then_apply_plan_skips_moved_tag(registry: LocalRegistry, tmp_path: Path) -> None:
    push(registry, "v1")
    push(registry, "pr-1")
    push(registry, "pr-2")
    env = cli_env(tmp_path, registry)
    plan = tmp_path / "plan.json"
    first = cleanup(
        env, registry.host, "--delete-tag", "pr-.*", "--dry-run", "--plan-out", str(plan)
    )
    assert first.returncode == 0, first.stderr
    assert images.list_tags(registry, REPO) == ["pr-1", "pr-2", "v1"]
    images.tag(registry, REPO, "v1", "pr-1")  # pr-1 moved after planning
    report = tmp_path / "report.json"
    second = run_cli(
        "cleanup", "--apply-plan", str(plan), "--report-json", str(report), env=env, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert images.list_tags(registry, REPO) == ["pr-1", "v1"]
    rows = {r["tag"]: r for r in json.loads(report.read_text())["repositories"][0]["items"]}
    assert rows["pr-1"]["action"] == "skipped"
    assert "moved" in rows["pr-1"]["error"]
    assert rows["pr-2"]["action"] == "deleted"


@pytest.mark.slow
def test_failed_deletion_continues_and_report_is_written(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    digests = [push(registry, f"pr-{i}") for i in range(4)]
    report = tmp_path / "report.json"
    with FaultProxy(registry.url) as proxy:
        proxy.add(status(500, times=None, method="DELETE", path=f"/manifests/{digests[1]}"))
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--max-retry-seconds", "3", "--report-json", str(report))
    assert done.returncode == 1, done.stderr
    assert images.list_tags(registry, REPO) == ["pr-1"]
    data = json.loads(report.read_text())
    assert data["exit_code"] == 1
    assert data["totals"] == {"deleted": 3, "failed": 1}


@pytest.mark.slow
def test_auth_failure_stops_with_exit_3_and_report(registry: LocalRegistry, tmp_path: Path) -> None:
    for i in range(6):
        push(registry, f"pr-{i}")
    report = tmp_path / "report.json"
    with FaultProxy(registry.url) as proxy:
        proxy.add(
            status(
                403,
                times=None,
                method="DELETE",
                skip=2,
                body=b'{"errors":[{"code":"DENIED","message":"no delete"}]}',
            )
        )
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--parallel", "1", "--report-json", str(report))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "error:" in done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(report.read_text())
    assert data["exit_code"] == 3
    assert data["error"]
    deleted = data["totals"].get("deleted", 0)
    assert 1 <= deleted <= 2
    assert deleted + data["totals"]["not-run"] == 6
    assert len(images.list_tags(registry, REPO)) == 6 - deleted


@pytest.mark.slow
def test_token_registry_and_time_rules(token_registry: LocalRegistry, tmp_path: Path) -> None:
    reg = token_registry
    now = dt.datetime.now(dt.UTC)
    images.push_image(reg, REPO, "old", created=now - dt.timedelta(days=40), via="http")
    images.push_image(reg, REPO, "mid", created=now - dt.timedelta(days=3), via="http")
    images.push_image(reg, REPO, "fresh", created=now - dt.timedelta(minutes=5), via="http")
    env = cli_env(tmp_path, reg)
    env["CIENV_REPO"] = f"{reg.host}/{REPO}"
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\ndelete:\n  older_than: 30d\n")
    done = run_cli("cleanup", "--policy", str(policy), "--verbose", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "deleted: older than 30d" in done.stdout
    assert "kept: newer than 2h" in done.stdout
    assert images.list_tags(reg, REPO) == ["fresh", "mid"]


@pytest.mark.parametrize(
    "args",
    [
        ["--keep-newer-than", "2 hours"],
        ["--delete-older-than", "-1d"],
        ["--delete-tag", "pr-["],
        ["--keep-latest", "-3"],
        ["--shard", "3/2"],
        ["--policy", "/nonexistent.yml"],
    ],
)
def test_bad_input_exits_2_and_deletes_nothing(
    registry: LocalRegistry, tmp_path: Path, args: list[str]
) -> None:
    push(registry, "pr-1")
    env = cli_env(tmp_path, registry)
    done = cleanup(env, registry.host, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert images.list_tags(registry, REPO) == ["pr-1"]


def test_dry_run_from_werf_variable(registry: LocalRegistry, tmp_path: Path) -> None:
    push(registry, "pr-1")
    env = cli_env(tmp_path, registry)
    env["WERF_DRY_RUN"] = "1"
    done = cleanup(env, registry.host)
    assert done.returncode == 0
    assert "would-delete" in done.stdout
    assert images.list_tags(registry, REPO) == ["pr-1"]


@pytest.mark.slow
def test_a_repository_with_nothing_to_delete_costs_its_listing_only(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """No tag matches delete.tags (or all are kept by name): the plan needs no digest, so
    the registry sees the tag listing and nothing else; the report says null for digests and
    still validates. A repository with a candidate is resolved and cleaned as before."""
    for tag in ("v1.0.0", "main", "latest"):
        push(registry, tag)
    images.push_image(registry, "grp/other", "pr-9", created=OLD, via="http")
    images.push_image(registry, "grp/other", "v2", created=OLD, via="http")
    report = tmp_path / "report.json"
    with FaultProxy(registry.url) as proxy:
        env = cli_env(tmp_path, registry, proxy.host)
        done = run_cli(
            "cleanup", "--repo", f"{proxy.host}/{REPO}", "--repo", f"{proxy.host}/grp/other",
            "--delete-tag", "pr-.*", "--keep-tag", "main", "--report-json", str(report),
            env=env, timeout=120,
        )  # fmt: skip
        seen = [(r.method, r.path) for r in proxy.records if r.status != 401]
    assert done.returncode == 0, done.stdout + done.stderr
    assert [s for s in seen if REPO in s[1]] == [("GET", f"/v2/{REPO}/tags/list")]
    assert ("GET", "/v2/grp/other/manifests/v2") in seen
    assert images.list_tags(registry, REPO) == ["latest", "main", "v1.0.0"]
    assert images.list_tags(registry, "grp/other") == ["v2"]
    data = json.loads(report.read_text())
    kept = {i["tag"]: (i["digest"], i["reason"]) for i in data["repositories"][0]["items"]}
    assert kept == {
        "latest": (None, "kept: does not match delete.tags"),
        "main": (None, "kept: does not match delete.tags"),
        "v1.0.0": (None, "kept: does not match delete.tags"),
    }
    schema = Path(__file__).resolve().parents[2] / "docs" / "cleanup-report.schema.json"
    checked = check_jsonschema("--schemafile", str(schema), str(report))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_a_tag_left_without_its_manifest_is_removed(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """distribution 2.8 deletes a manifest's revision before it untags it; a registry killed
    in between (`registry killed and restarted mid-run` in the fault suite) leaves the tag
    listed but unreadable, and the retried DELETE answers 404. Here the revision goes just
    before the DELETE arrives, as if an earlier attempt had got that far: the run must not
    stop at "already gone" but remove the tag."""
    doomed = push(registry, "pr-1")
    push(registry, "v1")
    revisions = registry.storage / "docker/registry/v2/repositories" / REPO / "_manifests/revisions"

    def half_delete(method: str, path: str) -> None:
        shutil.rmtree(revisions / "sha256" / doomed.split(":", 1)[1])

    with FaultProxy(registry.url) as proxy:
        proxy.add(hook(half_delete, method="DELETE", path=f"/manifests/{doomed}"))
        env = cli_env(tmp_path, registry, proxy.host)
        done = cleanup(env, proxy.host, "--delete-tag", "pr-.*")
        deletes = [r.status for r in proxy.records if r.method == "DELETE"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert deletes[0] == 404  # the half-done delete, reported as already gone
    assert "without a manifest: pr-1" in done.stderr
    assert images.list_tags(registry, REPO) == ["v1"]
