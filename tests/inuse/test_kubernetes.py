"""The Kubernetes scan against the loopback API fake, through the official client."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_env import lazy
from ci_env.errors import AuthError, CiEnvError, UsageError
from ci_env.inuse import kubernetes as kube
from ci_env.inuse.base import Collector, InUse
from tests.fakes.kubernetes_api import (
    FakeKubernetes,
    pod_spec,
    self_signed,
    workload,
    write_kubeconfig,
)
from tests.support.ports import free_port

HEX = "c" * 64
REG = "127.0.0.1:5000"


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes(lifetime=60).start()
    try:
        yield fake
    finally:
        fake.stop()


def scan(config: Path, **kw: Any) -> InUse:
    found = Collector()
    kube.collect(kube.Scope(str(config), **kw), found)
    return found.result()


def test_every_kind_and_container_list_is_read(cluster: FakeKubernetes, tmp_path: Path) -> None:
    pod = workload("pods", "p", pod_spec(f"{REG}/a:1", init=[f"{REG}/a:init"]))
    pod["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": f"{REG}/a:debug"}]
    status = {"name": "c0", "image": f"{REG}/a:1", "imageID": f"{REG}/a@sha256:{HEX}"}
    pod["status"] = {"containerStatuses": [{**status, "ready": True, "restartCount": 0}]}
    cluster.add("pods", pod)
    for resource in kube_resources():
        cluster.add(resource, workload(resource, "w", pod_spec(f"{REG}/a:{resource}")))
    cluster.add("replicasets", workload("replicasets", "old", pod_spec(f"{REG}/a:rs0"), replicas=0))
    done = {"conditions": [{"type": "Complete", "status": "True"}]}
    cluster.add("jobs", workload("jobs", "done", pod_spec(f"{REG}/a:finished"), status=done))
    use = scan(write_kubeconfig(tmp_path / "config", {"ctx": cluster})).of(REG, "a")
    expected = {"1", "init", "debug", "rs0", *kube_resources()}
    assert set(use.tags) == expected  # a finished Job protects nothing
    assert use.digests == {f"sha256:{HEX}": "in use by pod default/p (context ctx)"}
    assert use.tags["rs0"] == "in use by replicaset default/old (context ctx)"


def test_image_volumes_are_in_use(cluster: FakeKubernetes, tmp_path: Path) -> None:
    """Kubernetes 1.31+ `volumes[].image.reference` (ImageVolumeSource) mounts an image."""
    spec = pod_spec(f"{REG}/a:app")
    spec["volumes"] = [
        {"name": "models", "image": {"reference": f"{REG}/a:models", "pullPolicy": "Always"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    cluster.add("deployments", workload("deployments", "w", spec))
    use = scan(write_kubeconfig(tmp_path / "config", {"ctx": cluster})).of(REG, "a")
    assert use.tags["models"] == "in use by deployment default/w (context ctx)"
    assert set(use.tags) == {"app", "models"}


def kube_resources() -> list[str]:
    return [
        "replicationcontrollers",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
    ]


def test_lists_are_read_in_pages(
    cluster: FakeKubernetes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "PAGE_SIZE", 2)
    for n in range(5):
        cluster.add("pods", workload("pods", f"p{n}", pod_spec(f"{REG}/a:{n}")))
    cluster.expire_next_continue = True  # the first continue token is too old: start over
    use = scan(write_kubeconfig(tmp_path / "config", {"ctx": cluster})).of(REG, "a")
    assert set(use.tags) == {"0", "1", "2", "3", "4"}
    pages = [q for m, p, q in cluster.log if p == "/api/v1/pods"]
    assert all(q["limit"] == "2" for q in pages)
    assert len(pages) == 1 + 1 + 3  # first page, the expired continue, then 3 fresh pages


def test_namespaces_and_contexts_narrow_the_scan(tmp_path: Path) -> None:
    a, b = FakeKubernetes(lifetime=60).start(), FakeKubernetes(lifetime=60).start()
    try:
        a.add("deployments", workload("deployments", "web", pod_spec(f"{REG}/a:prod"), "prod"))
        a.add("deployments", workload("deployments", "web", pod_spec(f"{REG}/a:dev"), "dev"))
        b.add("deployments", workload("deployments", "web", pod_spec(f"{REG}/a:b")))
        config = write_kubeconfig(tmp_path / "config", {"a": a, "b": b})
        assert set(scan(config).of(REG, "a").tags) == {"prod", "dev", "b"}
        narrowed = scan(config, contexts=("a",), namespaces=("prod",)).of(REG, "a")
        assert set(narrowed.tags) == {"prod"}
        assert a.calls("GET", "/apis/apps/v1/namespaces/prod/deployments") == 1
    finally:
        a.stop()
        b.stop()


def test_forbidden_names_context_resource_and_verb(cluster: FakeKubernetes, tmp_path: Path) -> None:
    cluster.forbidden.add("replicasets")
    config = write_kubeconfig(tmp_path / "config", {"prod": cluster})
    with pytest.raises(AuthError) as caught:
        scan(config)
    text = caught.value.render()
    assert "kube context prod: cannot list replicasets in all namespaces" in text
    assert "403 Forbidden" in text
    assert "`list replicasets (API group apps)`" in text
    assert type(caught.value) is AuthError


def test_refused_token_is_an_auth_error_without_the_token(
    cluster: FakeKubernetes, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "config", {"prod": cluster})
    cluster.token = "rotated-token"
    with pytest.raises(AuthError, match="401 Unauthorized") as caught:
        scan(config)
    assert "kube-token-abc123" not in caught.value.render()


def test_unreachable_context_fails_with_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'http://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: gone, user: {token: t}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: gone}}]\n"
    )
    with pytest.raises(CiEnvError, match="kube context gone: cannot list pods .* unreachable") as e:
        scan(config)
    assert type(e.value) is CiEnvError
    assert e.value.exit_code == 1


def test_config_mistakes_are_usage_errors(cluster: FakeKubernetes, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no kubeconfig at"):
        scan(tmp_path / "missing")
    config = write_kubeconfig(tmp_path / "config", {"a": cluster})
    with pytest.raises(UsageError) as caught:
        scan(config, contexts=("nope",))
    assert caught.value.message.startswith("--kube-context nope: not in ")
    assert caught.value.hint == "its contexts: a"


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def absent(name: str) -> object:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(lazy, "module", absent)
    with pytest.raises(UsageError) as caught:
        scan(tmp_path / "config")
    assert "ci-env[kubernetes]" in caught.value.render()


def test_a_missing_file_among_several_is_skipped(cluster: FakeKubernetes, tmp_path: Path) -> None:
    cluster.add("pods", workload("pods", "p", pod_spec(f"{REG}/a:1")))
    config = write_kubeconfig(tmp_path / "config", {"a": cluster})
    joined = f"{tmp_path / 'gone'}:{config}"
    assert set(scan(Path(joined)).of(REG, "a").tags) == {"1"}


def test_inside_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    _, tls = self_signed(account)  # the cluster CA lands where a pod has it: ca.crt
    cluster = FakeKubernetes(token="sa-token-0123456789", lifetime=60, tls=tls).start()
    try:
        (account / "token").write_text(cluster.token)
        cluster.add("pods", workload("pods", "p", pod_spec(f"{REG}/a:1")))
        port = cluster.url.rsplit(":", 1)[1]
        where = kube.InCluster("127.0.0.1", port, str(account))
        use = scan(tmp_path / "no-kubeconfig", in_cluster=where).of(REG, "a")
        assert use.tags == {"1": "in use by pod default/p (context in-cluster)"}
        with pytest.raises(UsageError, match="--kube-context prod: no kubeconfig"):
            scan(tmp_path / "no-kubeconfig", in_cluster=where, contexts=("prod",))
    finally:
        cluster.stop()


def test_an_untrusted_certificate_is_named(tmp_path: Path) -> None:
    _, tls = self_signed(tmp_path)
    cluster = FakeKubernetes(lifetime=60, tls=tls).start()
    try:
        config = write_kubeconfig(tmp_path / "config", {"a": cluster})  # no CA data given
        with pytest.raises(CiEnvError, match="TLS certificate is not trusted") as caught:
            scan(config)
    finally:
        cluster.stop()
    assert caught.value.exit_code == 1


def test_an_inline_kubeconfig_is_used_without_a_file(
    cluster: FakeKubernetes, tmp_path: Path
) -> None:
    cluster.add("pods", workload("pods", "p", pod_spec(f"{REG}/a:1")))
    data = json.loads(write_kubeconfig(tmp_path / "config", {"a": cluster}).read_text())
    (tmp_path / "config").unlink()
    use = scan(tmp_path / "config", data=data).of(REG, "a")
    assert use.tags == {"1": "in use by pod default/p (context a)"}
    with pytest.raises(UsageError, match="--kube-context b: not in the inline kubeconfig"):
        scan(tmp_path / "config", data=data, contexts=("b",))


def test_auth_provider_and_resolved_client_credentials_are_secrets(tmp_path: Path) -> None:
    """Secrets only an auth provider holds, or only an exec plugin prints, are masked too."""
    import secrets as random  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from ci_env import secrets  # noqa: PLC0415

    made = {key: random.token_hex(16) for key in ("refresh", "client", "access", "exec")}
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": made["exec"]},
    }
    provider = {
        "name": "oidc",
        "config": {
            "refresh-token": made["refresh"],
            "client-secret": made["client"],
            "access-token": made["access"],
        },
    }
    exec_user = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": sys.executable,
        "args": ["-c", f"print({json.dumps(json.dumps(credential))})"],
        "interactiveMode": "Never",
    }
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [
            {"name": "p", "user": {"auth-provider": provider}},
            {"name": "e", "user": {"exec": exec_user}},
        ],
        "contexts": [{"name": "e", "context": {"cluster": "c", "user": "e"}}],
        "current-context": "e",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    for _, client in kube._clients(kube._sdk(), kube.Scope(str(path))):  # noqa: SLF001
        client.close()
    assert set(made.values()) <= set(secrets.registered())
