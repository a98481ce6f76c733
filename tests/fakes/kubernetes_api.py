"""A loopback fake of the Kubernetes API server's list endpoints, for the in-use scan.

Follows the Kubernetes API reference:
- list paths `/api/v1/[namespaces/{ns}/]{resource}` (core) and
  `/apis/{group}/v1/[namespaces/{ns}/]{resource}` (apps, batch), answering a `<Kind>List` with
  `metadata.resourceVersion` and `items` (API concepts, "Standard API terminology");
- chunking: `limit` caps a page, `metadata.continue` is an opaque token to pass back as
  `continue`, `metadata.remainingItemCount` counts the rest; an expired token answers
  `410 Gone` with reason `Expired` (API concepts, "Retrieving large results sets in chunks");
- errors are `Status` objects (`kind: Status`, `status: Failure`, `message`, `reason`, `code`;
  common-definitions/status): 401 `Unauthorized` without the right Bearer token, 403
  `Forbidden` with the apiserver's "<resource> is forbidden: User ... cannot list resource ..."
  message for resources the test forbids.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.fakes._loopback import Answer, Call, LoopbackApi
from tests.support import tls

GROUPS = {
    "pods": "",
    "replicationcontrollers": "",
    "deployments": "apps",
    "replicasets": "apps",
    "statefulsets": "apps",
    "daemonsets": "apps",
    "jobs": "batch",
    "cronjobs": "batch",
}
KINDS = {
    "pods": "Pod",
    "replicationcontrollers": "ReplicationController",
    "deployments": "Deployment",
    "replicasets": "ReplicaSet",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
}
USER = "system:serviceaccount:ci:cleanup"


def status(code: int, reason: str, message: str) -> Answer:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return code, {}, body


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


class FakeKubernetes(LoopbackApi):
    def __init__(
        self,
        token: str = "kube-token-abc123",
        lifetime: float = 120.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(lifetime=lifetime, tls=tls)
        self.token = token
        self.objects: dict[str, list[dict[str, Any]]] = {r: [] for r in GROUPS}
        self.forbidden: set[str] = set()
        self.expire_next_continue = False
        for resource, group in GROUPS.items():
            base = "/api/v1" if not group else f"/apis/{group}/v1"
            self.route("GET", rf"{base}/{resource}", self._lister(resource))
            self.route(
                "GET", rf"{base}/namespaces/(?P<ns>[^/]+)/{resource}", self._lister(resource)
            )

    def add(self, resource: str, item: dict[str, Any]) -> None:
        self.objects[resource].append(item)

    def _lister(self, resource: str) -> Any:
        def handle(call: Call) -> Answer:
            headers = {key.lower(): value for key, value in call.headers.items()}
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or given != self.token:  # schemes are case-blind
                return status(401, "Unauthorized", "Unauthorized")
            namespace = (
                call.match.group("ns") if call.match and "ns" in call.match.re.groupindex else None
            )
            if resource in self.forbidden:
                scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                group = GROUPS[resource]
                return status(
                    403,
                    "Forbidden",
                    f'{resource} is forbidden: User "{USER}" cannot list resource "{resource}" '
                    f'in API group "{group}" {scope}',
                )
            return self._page(resource, namespace, call)

        return handle

    def _page(self, resource: str, namespace: str | None, call: Call) -> Answer:
        items = [
            i for i in self.objects[resource] if namespace in (None, i["metadata"]["namespace"])
        ]
        offset = 0
        if "continue" in call.query:
            if self.expire_next_continue:
                self.expire_next_continue = False
                return status(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a "
                    "consistent list result. You can start a new list without the continue "
                    "parameter.",
                )
            offset = json.loads(base64.urlsafe_b64decode(call.query["continue"]))["offset"]
        limit = int(call.query.get("limit") or 0) or len(items) or 1
        page = items[offset : offset + limit]
        meta: dict[str, Any] = {"resourceVersion": "1000"}
        rest = len(items) - offset - len(page)
        if rest > 0:
            meta["continue"] = _token(offset + len(page))
            meta["remainingItemCount"] = rest
        group = GROUPS[resource]
        version = f"{group}/v1" if group else "v1"
        list_kind = KINDS[resource] + "List"
        return 200, {}, {"kind": list_kind, "apiVersion": version, "metadata": meta, "items": page}


def pod_spec(
    *images: str, init: Iterable[str] = (), ephemeral: Iterable[str] = ()
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{n}", "image": i} for n, i in enumerate(images)]
    }
    if init := list(init):
        spec["initContainers"] = [{"name": f"i{n}", "image": i} for n, i in enumerate(init)]
    if ephemeral := list(ephemeral):
        spec["ephemeralContainers"] = [
            {"name": f"e{n}", "image": i} for n, i in enumerate(ephemeral)
        ]
    return spec


def workload(
    resource: str, name: str, spec: dict[str, Any], namespace: str = "default", **extra: Any
) -> dict[str, Any]:
    """An object of `resource` whose pod template is `spec` (pods: the spec itself)."""
    meta = {"name": name, "namespace": namespace}
    kind = KINDS[resource]
    if resource == "pods":
        body: dict[str, Any] = {"spec": spec}
    elif resource == "cronjobs":
        body = {
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}
        }
    else:
        body = {"spec": {"replicas": extra.pop("replicas", 1), "template": {"spec": spec}}}
    return {"kind": kind, "metadata": meta, **body, **extra}


def write_kubeconfig(path: Path, clusters: dict[str, FakeKubernetes]) -> Path:
    """One context per fake (named by the key), each with its own cluster and token user."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": f.url}} for n, f in clusters.items()],
        "users": [{"name": n, "user": {"token": f.token}} for n, f in clusters.items()],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in clusters],
        "current-context": next(iter(clusters)),
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    path.chmod(0o600)
    return path


def self_signed(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA-flagged certificate for 127.0.0.1 (the API server's, as a cluster's `ca.crt`) and
    a server context serving it."""
    cert, key = tls.self_signed(directory, "kube-apiserver", ip="127.0.0.1")
    cert_path = cert.rename(directory / "ca.crt")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key))
    return cert_path, context
