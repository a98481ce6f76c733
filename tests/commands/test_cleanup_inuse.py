"""`ci-env cleanup --keep-in-use-kubernetes / --keep-in-use-file` end to end: the real registry,
two fake Kubernetes API servers behind one kubeconfig, results checked with skopeo."""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_env import secrets
from ci_env.cleanup.rules import KubeRule
from ci_env.commands import _inuse
from ci_env.errors import UsageError
from ci_env.inuse.kubernetes import InCluster
from tests.fakes.kubernetes_api import FakeKubernetes, pod_spec, workload, write_kubeconfig
from tests.support import images
from tests.support.cleanup_cli import (
    OLD,
    REPO,
    cleanup,
    cli_env,
    exists,
    push,
    push_untagged,
)
from tests.support.clirun import base_env, run_cli
from tests.support.registry import LocalRegistry

OTHER = "grp/other"


@pytest.fixture
def clusters() -> Iterator[tuple[FakeKubernetes, FakeKubernetes]]:
    a, b = FakeKubernetes(lifetime=120).start(), FakeKubernetes(lifetime=120).start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def seed(reg: LocalRegistry, a: FakeKubernetes, b: FakeKubernetes) -> dict[str, str]:
    pushed = {tag: push(reg, tag) for tag in ("pr-1", "pr-2", "pr-3", "pr-4", "pr-5")}
    host = reg.host
    a.add("deployments", workload("deployments", "web", pod_spec(f"{host}/{REPO}:pr-1"), "prod"))
    by_digest = pod_spec(f"{host}/{REPO}@{pushed['pr-2']}")
    b.add("deployments", workload("deployments", "api", by_digest, "prod"))
    old = workload("replicasets", "web-7d9f", pod_spec(f"{host}/{REPO}:pr-3"), "prod", replicas=0)
    a.add("replicasets", old)
    return pushed


@pytest.mark.slow
def test_workloads_in_two_contexts_and_a_list_keep_their_images(
    registry: LocalRegistry, tmp_path: Path, clusters: tuple[FakeKubernetes, FakeKubernetes]
) -> None:
    a, b = clusters
    pushed = seed(registry, a, b)
    listed = tmp_path / "in-use.txt"
    listed.write_text(f"{registry.host}/{REPO}:pr-5\n")
    env = cli_env(tmp_path, registry)
    env["KUBECONFIG"] = str(write_kubeconfig(tmp_path / "kubeconfig", {"a": a, "b": b}))
    args = ("--delete-tag", "pr-.*", "--keep-in-use-kubernetes", "--verbose")
    done = cleanup(env, registry.host, *args, "--keep-in-use-file", str(listed))
    assert done.returncode == 0, done.stdout + done.stderr
    assert images.list_tags(registry, REPO) == ["pr-1", "pr-2", "pr-3", "pr-5"]
    assert not exists(registry, f"{REPO}@{pushed['pr-4']}")
    for tag in ("pr-1", "pr-2", "pr-3", "pr-5"):
        assert exists(registry, f"{REPO}@{pushed[tag]}"), tag
    assert "kept: in use by deployment prod/web (context a)" in done.stdout
    assert "kept: in use by deployment prod/api (context b)" in done.stdout
    assert "kept: in use by replicaset prod/web-7d9f (context a)" in done.stdout
    assert "kept: in use by in-use.txt line 1" in done.stdout
    assert f"in use: 4 references from {listed}, kube context a, kube context b" in done.stderr
    assert a.calls("GET", "/apis/apps/v1/replicasets") == b.calls("GET", "/api/v1/pods") == 1


@pytest.mark.slow
def test_a_running_platform_manifest_outlives_its_deleted_index(
    registry: LocalRegistry, tmp_path: Path, clusters: tuple[FakeKubernetes, FakeKubernetes]
) -> None:
    """A pod started from `pr-8` when it was an index; `pr-8` has since moved to a new image
    and the old index is tagged `pr-7` and deleted. The pod's status names the platform
    manifest it runs: that one stays, the other platform goes with its index. distribution
    does not list untagged manifests, so only the in-use digest keeps it."""
    a, _ = clusters
    arm, amd = push_untagged(registry, "run", "arm64"), push_untagged(registry, "idle", "amd64")
    index = images.push_index(registry, REPO, "pr-7", [arm, amd])
    moved = push(registry, "pr-8")
    spec_image = f"{registry.host}/{REPO}:pr-8"
    pod = workload("pods", "web-1", pod_spec(spec_image), "prod")
    running = {"name": "c0", "image": spec_image, "ready": True, "restartCount": 0}
    running["imageID"] = f"docker-pullable://{registry.host}/{REPO}@{arm}"
    pod["status"] = {"containerStatuses": [running]}
    a.add("pods", pod)
    env = cli_env(tmp_path, registry)
    kubeconfig = str(write_kubeconfig(tmp_path / "kubeconfig", {"a": a}))
    args = ("--delete-tag", "pr-.*", "--keep-in-use-kubernetes", "--kubeconfig", kubeconfig)
    done = cleanup(env, registry.host, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert images.list_tags(registry, REPO) == ["pr-8"]
    assert exists(registry, f"{REPO}@{moved}")
    assert not exists(registry, f"{REPO}@{index}")
    assert not exists(registry, f"{REPO}@{amd}")
    assert exists(registry, f"{REPO}@{arm}")


@pytest.mark.slow
def test_a_forbidden_context_deletes_nothing_anywhere(
    registry: LocalRegistry, tmp_path: Path, clusters: tuple[FakeKubernetes, FakeKubernetes]
) -> None:
    a, b = clusters
    seed(registry, a, b)
    images.push_image(registry, OTHER, "pr-9", created=OLD, via="http")
    b.forbidden.add("replicasets")
    config = write_kubeconfig(tmp_path / "kubeconfig", {"a": a, "b": b})
    env = cli_env(tmp_path, registry)
    report = tmp_path / "report.json"
    policy = tmp_path / "policy.yml"  # the policy file's spelling of --keep-in-use-kubernetes
    policy.write_text("version: 1\nkeep:\n  in_use:\n    kubernetes: {contexts: [a, b]}\n")
    done = cleanup(
        env,
        registry.host,
        "--repo",
        f"{registry.host}/{OTHER}",
        "--delete-tag",
        "pr-.*",
        "--policy",
        str(policy),
        "--kubeconfig",
        str(config),
        "--report-json",
        str(report),
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "kube context b: cannot list replicasets in all namespaces" in done.stderr
    assert "`list replicasets (API group apps)`" in done.stderr
    assert a.token not in done.stderr + done.stdout
    assert b.token not in done.stderr
    assert images.list_tags(registry, REPO) == ["pr-1", "pr-2", "pr-3", "pr-4", "pr-5"]
    assert images.list_tags(registry, OTHER) == ["pr-9"]
    assert json.loads(report.read_text())["exit_code"] == 3


@pytest.mark.slow
def test_apply_plan_rechecks_what_is_in_use_now(
    registry: LocalRegistry, tmp_path: Path, clusters: tuple[FakeKubernetes, FakeKubernetes]
) -> None:
    a, b = clusters
    pushed = seed(registry, a, b)
    env = cli_env(tmp_path, registry)
    env["KUBECONFIG"] = str(write_kubeconfig(tmp_path / "kubeconfig", {"a": a, "b": b}))
    plan = tmp_path / "plan.json"
    made = cleanup(
        env,
        registry.host,
        "--delete-tag",
        "pr-.*",
        "--keep-in-use-kubernetes",
        "--plan-out",
        str(plan),
        "--dry-run",
    )
    assert made.returncode == 0, made.stderr
    # Hours later a review app is deployed from pr-4, which the plan deletes.
    review = pod_spec(f"{registry.host}/{REPO}@{pushed['pr-4']}")
    b.add("deployments", workload("deployments", "review-4", review, "review"))
    # The apply job has the kubeconfig as a CI variable, as werf users keep it.
    apply_env = {k: v for k, v in env.items() if k != "KUBECONFIG"}
    encoded = base64.b64encode(Path(env["KUBECONFIG"]).read_bytes()).decode()
    apply_env["WERF_KUBE_CONFIG_BASE64"] = encoded
    args = ("--apply-plan", str(plan), "--keep-in-use-kubernetes")
    done = cleanup(apply_env, registry.host, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pr-4 (in use by deployment review/review-4 (context b))" in done.stdout
    assert images.list_tags(registry, REPO) == ["pr-1", "pr-2", "pr-3", "pr-4", "pr-5"]
    assert exists(registry, f"{REPO}@{pushed['pr-4']}")


@pytest.mark.slow
def test_apply_plan_refuses_to_drop_the_policy_files_in_use_protection(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """The plan was made with `keep.in_use` from the policy file, which `--apply-plan` does
    not read: applying it without the options would skip the recheck, so it is refused."""
    push(registry, "pr-1")
    listed = tmp_path / "images.txt"
    listed.write_text(f"{registry.host}/{REPO}:pr-1\n")
    policy = tmp_path / "policy.yml"
    policy.write_text(f"version: 1\nkeep:\n  in_use:\n    file: {listed}\n")
    env, plan = cli_env(tmp_path, registry), tmp_path / "plan.json"
    args = ("--delete-tag", "pr-.*", "--policy", str(policy), "--plan-out", str(plan))
    assert cleanup(env, registry.host, *args, "--dry-run").returncode == 0
    done = cleanup(env, registry.host, "--apply-plan", str(plan))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the plan was made with in-use protection ({listed})" in done.stderr
    assert "Traceback" not in done.stderr
    assert images.list_tags(registry, REPO) == ["pr-1"]
    listed.write_text("")  # with the option again, the recheck runs (nothing in use now)
    again = cleanup(
        env, registry.host, "--apply-plan", str(plan), "--keep-in-use-file", str(listed)
    )
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kube-context", "a"], "--kube-context and --kube-namespace scope the Kubernetes scan"),
        (["--keep-in-use-file", "missing.txt"], "--keep-in-use-file: cannot read"),
    ],
)
def test_in_use_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli("cleanup", "--repo", "127.0.0.1:1/a", *args, env=base_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr, done.stderr


_CLUSTER = {"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}
_CONTEXT = {"name": "c", "context": {"cluster": "c", "user": "u"}}


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"clusters": [_CLUSTER], "contexts": [_CONTEXT], "users": 5}, "users is a int"),
        ([_CLUSTER], "the top level is a list"),
        (
            {
                "clusters": [{"name": "c", "cluster": {"certificate-authority-data": "!x"}}],
                "contexts": [_CONTEXT],
            },
            "clusters[0].cluster.certificate-authority-data is not valid base64",
        ),
        ({"clusters": [_CLUSTER], "contexts": [{"context": {}}]}, "contexts[0].name is missing"),
    ],
)
def test_a_malformed_kubeconfig_is_a_usage_error(tmp_path: Path, config: object, key: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    args = ["--delete-tag", "x", "--keep-in-use-kubernetes", "--kubeconfig", str(path)]
    done = run_cli("cleanup", "--repo", "127.0.0.1:1/a", *args, env=base_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"kubeconfig {path}: {key}" in done.stderr, done.stderr


def test_help_does_not_import_the_kubernetes_client(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom ci_env import cli\n"
        "try:\n    cli.main(['cleanup', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('kubernetes' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=base_env(tmp_path), capture_output=True, text=True
    )
    assert done.stdout.strip().endswith("False"), done.stdout + done.stderr
    assert "--keep-in-use-kubernetes" in done.stdout
    assert "--kube-namespace NS" in done.stdout


def test_the_service_account_is_used_only_without_a_kubeconfig() -> None:
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    given = argparse.Namespace(kubeconfig=None)
    assert _inuse.in_cluster(given, pod) == InCluster("10.0.0.1", "443")
    assert _inuse.in_cluster(given, {**pod, "KUBECONFIG": "/k"}) is None
    assert _inuse.in_cluster(argparse.Namespace(kubeconfig="/k"), pod) is None
    assert _inuse.in_cluster(given, {}) is None


def test_kubeconfig_and_context_defaults_follow_werf() -> None:
    none = argparse.Namespace(kubeconfig=None)
    home = {"HOME": "/home/ci"}
    assert _inuse.kubeconfig_path(none, home) == "/home/ci/.kube/config"
    assert _inuse.kubeconfig_path(none, {**home, "KUBECONFIG": "/a:/b"}) == "/a:/b"
    werf = {**home, "KUBECONFIG": "/a", "WERF_KUBE_CONFIG": "/w"}
    assert _inuse.kubeconfig_path(none, werf) == "/w"
    assert _inuse.kubeconfig_path(argparse.Namespace(kubeconfig="/x"), werf) == "/x"
    assert _inuse._contexts(KubeRule(), _inuse.only_context({"WERF_KUBE_CONTEXT": "deploy"})) == ()
    assert _inuse._contexts(
        KubeRule(), _inuse.only_context({"WERF_SCAN_ONLY_CONTEXT": "prod"})
    ) == ("prod",)
    prod = _inuse.only_context({"WERF_SCAN_ONLY_CONTEXT": "prod"})
    assert _inuse._contexts(KubeRule(("a",)), prod) == ("a",)


def test_a_base64_kubeconfig_variable_is_decoded_and_masked() -> None:
    config = "apiVersion: v1\nusers: [{name: u, user: {token: inline-token-123456}}]\n"
    encoded = base64.b64encode(config.encode()).decode()
    none = argparse.Namespace(kubeconfig=None)
    data = _inuse.kubeconfig_data(
        _inuse.kubeconfig_variable(none, {"WERF_KUBE_CONFIG_BASE64": encoded})
    )
    assert data is not None
    assert data["apiVersion"] == "v1"
    assert "inline-token-123456" not in secrets.redact("token inline-token-123456")
    assert (
        _inuse.kubeconfig_data(_inuse.kubeconfig_variable(argparse.Namespace(kubeconfig="/k"), {}))
        is None
    )
    with pytest.raises(UsageError) as caught:
        _inuse.kubeconfig_data(
            _inuse.kubeconfig_variable(none, {"CIENV_KUBE_CONFIG_BASE64": "bm90IHlhbWw6IFs="})
        )
    assert caught.value.message == "CIENV_KUBE_CONFIG_BASE64 is not a base64-encoded kubeconfig"
