"""Images that Kubernetes workloads use, read with the official client (`ci-env[kubernetes]`).

Like werf's cleanup, every kubeconfig context (or those named; inside a pod without a
kubeconfig, its service account) and every namespace (or those named) is scanned: Pods (spec
and the resolved `status.*containerStatuses[].imageID`), ReplicationControllers, Deployments,
ReplicaSets (old zero-replica revisions too: a rollback needs them), StatefulSets, DaemonSets,
Jobs not yet Complete/Failed and CronJobs (batch/v1), with their `containers`,
`initContainers` and `ephemeralContainers`. Lists are read in pages (`limit`/`continue`).
A context that cannot be listed stops the run: nothing may be deleted
when part of what is in use is unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from ci_env import lazy, secrets
from ci_env.errors import AuthError, CiEnvError, UsageError
from ci_env.inuse import kubeconfig as kubeconfig_shape
from ci_env.inuse.base import Collector, normalise
from ci_env.registry import responses

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
TIMEOUT = (10.0, 60.0)  # connect, read (seconds) per list request
_RESTARTS = 3  # a `continue` token expired (410 Gone): the list starts over, this many times


IN_CLUSTER = "in-cluster"  # the context name of a pod's own service account
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class InCluster:
    """A pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, read by the CLI): used when
    no kubeconfig file exists, as kubectl does inside a pod."""

    host: str
    port: str
    account_dir: str = SERVICE_ACCOUNT


@dataclass(frozen=True)
class Scope:
    kubeconfig: str  # one file, or several joined by ':' as in KUBECONFIG
    contexts: tuple[str, ...] = ()  # empty: every context
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    in_cluster: InCluster | None = None
    data: Mapping[str, Any] | None = None  # a kubeconfig given inline (not a file): wins


@dataclass(frozen=True)
class _Kind:
    label: str  # "deployment"
    resource: str  # "deployments", as RBAC names it
    group: str  # "" (core), "apps", "batch"
    api: str  # client class
    method: str  # list_<method>_for_all_namespaces / list_namespaced_<method>


KINDS = (
    _Kind("pod", "pods", "", "CoreV1Api", "pod"),
    _Kind(
        "replicationcontroller", "replicationcontrollers", "", "CoreV1Api", "replication_controller"
    ),
    _Kind("deployment", "deployments", "apps", "AppsV1Api", "deployment"),
    _Kind("replicaset", "replicasets", "apps", "AppsV1Api", "replica_set"),
    _Kind("statefulset", "statefulsets", "apps", "AppsV1Api", "stateful_set"),
    _Kind("daemonset", "daemonsets", "apps", "AppsV1Api", "daemon_set"),
    _Kind("job", "jobs", "batch", "BatchV1Api", "job"),
    _Kind("cronjob", "cronjobs", "batch", "BatchV1Api", "cron_job"),
)
_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")
_STATUSES = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def _sdk() -> ModuleType:
    try:
        return lazy.module("kubernetes")  # ~0.5 s to import: only when a scan is asked for
    except ModuleNotFoundError:
        raise UsageError(
            "--keep-in-use-kubernetes needs the Kubernetes client, which is not installed",
            "pip install 'ci-env[kubernetes]' (the Docker image has it)",
        ) from None


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _pod_spec(kind: _Kind, item: dict[str, Any]) -> Any:
    if kind.label == "pod":
        return item.get("spec")
    if kind.label == "cronjob":
        return _dig(item, "spec", "jobTemplate", "spec", "template", "spec")
    return _dig(item, "spec", "template", "spec")


def images(kind: _Kind, item: dict[str, Any]) -> Iterator[str]:
    """Every image string an object names (spec, and for pods the resolved status)."""
    spec = _pod_spec(kind, item)
    for key in _CONTAINERS:
        for container in _dig(spec, key) or ():
            if isinstance(container, dict) and isinstance(container.get("image"), str):
                yield container["image"]
    # Image volumes (Kubernetes 1.31+, `ImageVolumeSource`): an OCI image mounted read-only.
    for volume in _dig(spec, "volumes") or ():
        reference = _dig(volume, "image", "reference")
        if isinstance(reference, str) and reference:
            yield reference
    if kind.label != "pod":
        return
    for key in _STATUSES:
        for status in _dig(item, "status", key) or ():
            for field in ("imageID", "image"):
                value = status.get(field) if isinstance(status, dict) else None
                if isinstance(value, str) and value:
                    yield value


def finished(item: dict[str, Any]) -> bool:
    """A Job whose Complete or Failed condition is True (its pods, if any, are still listed)."""
    conditions = _dig(item, "status", "conditions") or ()
    return any(
        isinstance(c, dict)
        and c.get("type") in {"Complete", "Failed"}
        and c.get("status") == "True"
        for c in conditions
    )


def _read_files(kubeconfig: str) -> None:
    """Each file's shape is checked and its secrets registered before the client reads it."""
    for path in kubeconfig.split(":"):
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the client reports an unreadable file itself
        kubeconfig_shape.register_secrets(data)
        kubeconfig_shape.check(data, path)


def existing(kubeconfig: str) -> str:
    """The kubeconfig files that exist, joined by ':' (like kubectl, a missing one among
    several is skipped); "" when there is none."""
    return ":".join(path for path in kubeconfig.split(":") if path and Path(path).is_file())


def _no_kubeconfig(kubeconfig: str) -> UsageError:
    return UsageError(
        f"--keep-in-use-kubernetes: no kubeconfig at {kubeconfig or '(none)'}",
        "pass --kubeconfig FILE or set KUBECONFIG (inside a pod, its service account is used)",
    )


def _in_cluster_client(k8s: ModuleType, where: InCluster, wanted: tuple[str, ...]) -> Any:
    if wanted and wanted != (IN_CLUSTER,):
        raise UsageError(
            f"--kube-context {', '.join(wanted)}: no kubeconfig, only the pod's service account",
            f"pass --kubeconfig FILE, or --kube-context {IN_CLUSTER}",
        )
    configuration = k8s.client.Configuration()
    loader = k8s.config.incluster_config.InClusterConfigLoader(
        token_filename=str(Path(where.account_dir) / "token"),
        cert_filename=str(Path(where.account_dir) / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": where.host, "KUBERNETES_SERVICE_PORT": where.port},
    )
    try:
        loader.load_and_set(configuration)
    except k8s.config.ConfigException as error:
        raise UsageError(
            f"kube context {IN_CLUSTER}: {error}",
            f"check the service account in {where.account_dir}",
        ) from None
    secrets.register(configuration.api_key.get("BearerToken", "").partition(" ")[2])
    return k8s.client.ApiClient(configuration)


def _contexts(
    k8s: ModuleType, kubeconfig: str, data: Mapping[str, Any] | None, wanted: tuple[str, ...]
) -> list[str]:
    try:
        if data is not None:
            found = k8s.config.kube_config.KubeConfigLoader(config_dict=dict(data)).list_contexts()
        else:
            found, _ = k8s.config.list_kube_config_contexts(config_file=kubeconfig)
    except k8s.config.ConfigException as error:
        raise UsageError(f"kubeconfig {kubeconfig}: {error}", "fix the kubeconfig") from None
    names = [context["name"] for context in found or ()]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise UsageError(
            f"--kube-context {', '.join(unknown)}: not in {kubeconfig}",
            "its contexts: " + (", ".join(names) or "none"),
        )
    return list(wanted) or names


def _status_message(body: object) -> str:
    """The `message` of a Kubernetes `Status` error body, or the body's first line."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        status = responses.loads(text)
    except ValueError:
        return text.strip().splitlines()[0][:200] if text.strip() else ""
    return str(status.get("message", "")) if isinstance(status, dict) else ""


def _where(namespace: str | None) -> str:
    return f"in namespace {namespace}" if namespace else "in all namespaces"


def _failure(
    k8s: ModuleType, context: str, kind: _Kind, namespace: str | None, error: Exception
) -> CiEnvError:
    what = f"kube context {context}: cannot list {kind.resource} {_where(namespace)}"
    rbac = f"list {kind.resource}" + (f" (API group {kind.group})" if kind.group else "")
    if isinstance(error, k8s.client.ApiException):
        detail = f"{error.status} {error.reason}: {_status_message(error.body)}".rstrip(": ")
        if error.status == 401:
            return AuthError(
                f"{what} ({detail})",
                "the API server refused this context's credentials (expired token?): renew "
                "them. Nothing was deleted",
            )
        if error.status == 403:
            return AuthError(
                f"{what} ({detail})",
                f"cleanup needs `{rbac}` in every scanned context; grant it, or narrow the "
                "scan with --kube-context / --kube-namespace. Nothing was deleted",
            )
        return CiEnvError(f"{what} ({detail})", "nothing was deleted; retry later")
    if isinstance(error, ValueError):
        return CiEnvError(f"{what}: the answer is not a Kubernetes list", "nothing was deleted")
    cause = getattr(error, "reason", None) or error  # urllib3's MaxRetryError wraps the cause
    if "SSL" in type(cause).__name__:
        return CiEnvError(
            f"{what}: the API server's TLS certificate is not trusted ({type(cause).__name__})",
            "check the context's certificate-authority data; nothing was deleted",
        )
    return CiEnvError(
        f"{what}: the API server is unreachable ({type(cause).__name__})",
        "check the context's server address and that this job can reach it; nothing was deleted",
    )


def _pages(call: Callable[..., Any], **args: Any) -> Iterator[dict[str, Any]]:
    token: str | None = None
    restarts = 0
    while True:
        try:
            # Raw JSON: only image fields are read; the client's models take twice as long
            # (bench/inuse_scan_bench.py) and reject answers missing a field they require.
            answer = call(
                limit=PAGE_SIZE,
                _continue=token,
                _preload_content=False,
                _request_timeout=TIMEOUT,
                **args,
            )
        except Exception as error:
            if getattr(error, "status", None) == 410 and token and restarts < _RESTARTS:
                token, restarts = None, restarts + 1  # the snapshot expired: start over
                continue
            raise
        body = responses.loads(answer.data)
        yield from body.get("items") or ()
        token = _dig(body, "metadata", "continue")
        if not token:
            return


def _scan_kind(
    k8s: ModuleType, client: Any, context: str, kind: _Kind, scope: Scope, into: Collector
) -> int:
    api = getattr(k8s.client, kind.api)(client)
    count = 0
    for namespace in scope.namespaces or (None,):
        if namespace is None:
            call, args = getattr(api, f"list_{kind.method}_for_all_namespaces"), {}
        else:
            call, args = getattr(api, f"list_namespaced_{kind.method}"), {"namespace": namespace}
        try:
            for item in _pages(call, **args):
                if kind.label == "job" and finished(item):
                    continue
                meta = item.get("metadata") or {}
                who = f"{kind.label} {meta.get('namespace')}/{meta.get('name')} (context {context})"
                for text in images(kind, item):
                    if (ref := normalise(text)) is not None:
                        into.add(ref, who)
                count += 1
        except CiEnvError:
            raise
        except Exception as error:  # the client raises ApiException and urllib3 errors
            raise _failure(k8s, context, kind, namespace, error) from None
    return count


def _clients(k8s: ModuleType, scope: Scope) -> Iterator[tuple[str, Any]]:
    """(context name, API client) for each context in scope."""
    kubeconfig = "the inline kubeconfig" if scope.data is not None else existing(scope.kubeconfig)
    if not kubeconfig:
        if scope.in_cluster is None:
            raise _no_kubeconfig(scope.kubeconfig)
        yield IN_CLUSTER, _in_cluster_client(k8s, scope.in_cluster, scope.contexts)
        return
    if scope.data is not None:
        kubeconfig_shape.register_secrets(scope.data)
        kubeconfig_shape.check(scope.data, kubeconfig)
    else:
        _read_files(kubeconfig)
    for context in _contexts(k8s, kubeconfig, scope.data, scope.contexts):
        client = _client(k8s, scope, kubeconfig, context)
        # What the client resolved (exec plugins, auth providers) is a secret too.
        kubeconfig_shape.register_client_secrets(client.configuration.api_key)
        yield context, client


def _client(k8s: ModuleType, scope: Scope, kubeconfig: str, context: str) -> Any:
    try:
        if scope.data is not None:
            return k8s.config.new_client_from_config_dict(
                dict(scope.data), context=context, persist_config=False
            )
        return k8s.config.new_client_from_config(
            config_file=kubeconfig, context=context, persist_config=False
        )
    except k8s.config.ConfigException as error:
        raise UsageError(f"kube context {context}: {error}", "fix the kubeconfig") from None
    except (TypeError, KeyError, AttributeError, ValueError) as error:  # a shape not checked
        raise UsageError(
            f"kubeconfig {kubeconfig}: context {context} is unusable ({type(error).__name__})",
            "fix the kubeconfig (kubectl config view)",
        ) from None


def collect(scope: Scope, into: Collector) -> None:
    """Add every image the scoped workloads use; any context that cannot be listed raises."""
    k8s = _sdk()
    for context, client in _clients(k8s, scope):
        try:
            counts = [_scan_kind(k8s, client, context, kind, scope, into) for kind in KINDS]
        finally:
            client.close()
        logger.debug("kube context %s: %d objects scanned", context, sum(counts))
        into.sources.append(f"kube context {context}")
