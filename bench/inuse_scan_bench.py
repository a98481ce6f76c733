"""Benchmark: the Kubernetes in-use scan reading raw JSON against the client's model objects.

`ci_env.inuse.kubernetes` asks the official client for raw list answers (`_preload_content=
False`) and reads only the image fields. This measures why: against the loopback API fake
holding N pods (each with two containers, an init container and a resolved status), it times
  1. the scan as ci-env runs it (pods only, pages of 500, JSON parsed with `json`);
  2. the same pages deserialised into the client's `V1PodList` models, images read from them.
Both talk to the same server in the same run; it prints both times and the ratio.

Usage: python bench/inuse_scan_bench.py [-n N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ci_env.inuse import kubernetes as kube  # noqa: E402
from ci_env.inuse.base import Collector  # noqa: E402
from tests.fakes.kubernetes_api import (  # noqa: E402
    FakeKubernetes,
    pod_spec,
    workload,
    write_kubeconfig,
)

HOST = "registry.example.com"


def seed(fake: FakeKubernetes, count: int) -> None:
    for n in range(count):
        spec = pod_spec(f"{HOST}/app:{n}", f"{HOST}/sidecar:1", init=[f"{HOST}/migrate:{n}"])
        pod = workload("pods", f"app-{n}", spec, f"ns-{n % 20}")
        digest = f"sha256:{n:064x}"
        pod["status"] = {
            "containerStatuses": [
                {
                    "name": "c0",
                    "image": f"{HOST}/app:{n}",
                    "imageID": f"{HOST}/app@{digest}",
                    "ready": True,  # required fields of ContainerStatus (the client checks them)
                    "restartCount": 0,
                }
            ]
        }
        fake.add("pods", pod)


def raw(config: str) -> int:
    found = Collector()
    pods = (kube.KINDS[0],)
    original = kube.KINDS
    kube.KINDS = pods
    try:
        kube.collect(kube.Scope(config), found)
    finally:
        kube.KINDS = original
    return sum(len(use.tags) for use in found.result().repositories.values())


def models(config: str) -> int:
    import kubernetes  # noqa: PLC0415

    client = kubernetes.config.new_client_from_config(config_file=config, persist_config=False)
    api = kubernetes.client.CoreV1Api(client)
    tags: set[str] = set()
    token = None
    while True:
        answer = api.list_pod_for_all_namespaces(limit=kube.PAGE_SIZE, _continue=token)
        for pod in answer.items:
            for container in (pod.spec.containers or []) + (pod.spec.init_containers or []):
                tags.add(container.image)
        token = answer.metadata._continue
        if not token:
            client.close()
            return len(tags)


def timed(func: object, config: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        func(config)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=3000, help="pods (default 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="best of R (default 3)")
    args = parser.parse_args()
    fake = FakeKubernetes(lifetime=600).start()
    try:
        seed(fake, args.n)
        config = str(write_kubeconfig(Path(tempfile.mkdtemp()) / "config", {"bench": fake}))
        raw(config)  # warm up: imports, connection
        fast = timed(raw, config, args.rounds)
        slow = timed(models, config, args.rounds)
    finally:
        fake.stop()
    print(f"pods: {args.n}, pages of {kube.PAGE_SIZE}, best of {args.rounds}")
    print(f"raw JSON (ci-env):     {fast:.2f} s")
    print(f"client model objects:  {slow:.2f} s")
    print(f"ratio: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
