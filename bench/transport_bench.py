"""Benchmark: what the transport's caches in front of requests save per request.

`ci_env/registry/transport.py` caches `Session.merge_environment_settings` per origin
(requests re-reads every proxy variable on each request). Until issue 18 it also overrode
`HTTPAdapter.get_connection_with_tls_context` (a subclass hook only since requests 2.32.2) to
keep each origin's pool (requests rebuilds the pool key on each request); it went, as it did
not pay, and `cached_pools` below puts it back for a run. This sends the same HEAD of one
manifest (what cleanup sends per tag) through `Transport.send` to the local `docker-registry`
as shipped, with requests' own `merge_environment_settings`, and with the pool cache, in one
run:
  - direct on loopback, serial: the client's CPU per request (this thread's CPU time);
  - through a relay adding LATENCY ms per request (`--latency`, default 5 and 20), with
    `--threads` requests in flight (cleanup's own pool): the wall time a run would see.
Variants interleave over `--rounds` rounds (the best round counts: the machine is shared).
Prints ms per request and each variant's ratio against the shipped transport ("x shipped":
above 1 costs more than shipped).

Usage: python bench/transport_bench.py [-n N] [--rounds R] [--threads T] [--latency MS ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ci_env.registry import transport  # noqa: E402
from tests.support import images  # noqa: E402
from tests.support.latency import LatencyRelay  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

REPO = "bench/app"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


def cached_pools(
    self: HTTPAdapter, request: Any, verify: Any, proxies: Any = None, cert: Any = None
) -> Any:
    """The pool cache transport.py had until issue 18 (one pool per origin and TLS setting,
    replaced when the pool manager closed it), kept here to re-measure the decision."""
    parts = urlsplit(str(request.url))
    key = (parts.scheme, parts.netloc, repr(verify), repr(cert))
    pools = self.__dict__.setdefault("bench_pools", {})
    pool = pools.get(key)
    if pool is None or getattr(pool, "pool", None) is None:  # closed: no connection queue
        pool = HTTPAdapter.get_connection_with_tls_context(self, request, verify, proxies, cert)
        pools[key] = pool
    return pool


SETTINGS = (transport._Session, "merge_environment_settings")  # noqa: SLF001
POOLS = (transport._Adapter, "get_connection_with_tls_context")  # noqa: SLF001
# variant -> the methods it puts on transport.py's classes for the run
VARIANTS: dict[str, dict[tuple[type, str], Callable[..., Any]]] = {
    "shipped": {},
    "requests' own settings": {SETTINGS: requests.Session.merge_environment_settings},
    "+ pool cache (removed)": {POOLS: cached_pools},
}


@contextmanager
def variant(methods: dict[tuple[type, str], Callable[..., Any]]) -> Iterator[None]:
    """Put `methods` on transport.py's classes for the block; what was there comes back."""
    saved = {key: vars(key[0]).get(key[1]) for key in methods}
    for (cls, name), method in methods.items():
        setattr(cls, name, method)
    try:
        yield
    finally:
        for (cls, name), old in saved.items():
            if old is None:
                delattr(cls, name)  # inherited from requests again
            else:
                setattr(cls, name, old)


def head_many(host: str, auth: str, path: str, count: int, threads: int) -> tuple[float, float]:
    """(wall seconds, this thread's CPU seconds) for `count` HEADs; a fresh Transport each run."""
    options = transport.BackendOptions(max_attempts=1)  # the class transport.py is given
    client = transport.Transport(host, options)
    headers = {"Authorization": f"Basic {auth}", "Accept": ACCEPT}

    def one(_: int) -> None:
        response = client.send("HEAD", path, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"HEAD {path}: {response.status_code}")

    try:
        for i in range(5):  # scheme choice, connections, the settings of the origin
            one(i)
        wall, cpu = time.perf_counter(), time.thread_time()
        if threads == 1:
            for i in range(count):
                one(i)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, range(count)))
        return time.perf_counter() - wall, time.thread_time() - cpu
    finally:
        client.close()


def measure(
    run: Callable[[], tuple[float, float]], rounds: int, count: int
) -> dict[str, tuple[float, float]]:
    """Best (wall, cpu) ms per request of each variant over `rounds` interleaved rounds."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, methods in VARIANTS.items():
            with variant(methods):
                wall, cpu = run()
            ms = (wall * 1000 / count, cpu * 1000 / count)
            old = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(old[0], ms[0]), min(old[1], ms[1]))
    return best


def show(title: str, best: dict[str, tuple[float, float]], column: int) -> None:
    unit = ("wall", "CPU")[column]
    print(f"\n{title}")
    print(f"  {'variant':<24} {unit + ' ms/request':>16} {'x shipped':>10}")
    base = best["shipped"][column]
    for name, values in best.items():
        print(f"  {name:<24} {values[column]:>16.3f} {values[column] / base:>10.2f}")


@contextmanager
def relayed(upstream: str, delay: float) -> Iterator[str]:
    """A `LatencyRelay` in a child process (its threads must not share this one's GIL)."""
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_relay, args=(upstream, delay, theirs), daemon=True
    )
    child.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        child.join(10)


def _relay(upstream: str, delay: float, conn: Connection) -> None:
    with LatencyRelay(upstream, delay, lifetime=3600) as relay:
        conn.send(relay.host)
        conn.recv()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=400, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--latency", type=float, nargs="*", default=[5.0, 20.0])
    args = parser.parse_args()
    print(f"requests {requests.__version__}; {args.n} HEADs per variant, best of {args.rounds}")
    reg = LocalRegistry("none").start()  # the registry's own auth cost is not the client's
    try:
        digest = images.push_image(reg, REPO, "v1", via="http")
        path, auth = f"/v2/{REPO}/manifests/{digest}", reg.auth_entry()
        direct = measure(lambda: head_many(reg.host, auth, path, args.n, 1), args.rounds, args.n)
        show("loopback, serial: the client's CPU", direct, 1)
        show("loopback, serial: wall", direct, 0)
        for latency in args.latency:
            with relayed(reg.host, latency / 1000) as host:
                best = measure(
                    lambda h=host: head_many(h, auth, path, args.n, args.threads),
                    args.rounds,
                    args.n,
                )
            show(f"{latency:g} ms added per request, {args.threads} threads: wall", best, 0)
    finally:
        reg.close()


if __name__ == "__main__":
    main()
