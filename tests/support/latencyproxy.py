"""A local registry as seen across a network: every request, token requests included, costs a
round trip.

    with Network(registry, rtt=0.030) as net:
        ... run clients against net.host ...
        net.methods()  # Counter({"GET": ..., "DELETE": ..., "token": ...})

Two `FaultProxy`s with a `delay`: one in front of the registry and, with Bearer auth, one in
front of its token server; the registry's `WWW-Authenticate` realm is rewritten to the second,
because a hosted registry's token service is across the network too. Seed the registry directly
(`registry.url`) to keep set-up out of the measurement.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType

from tests.support.faultproxy import FaultProxy, Record
from tests.support.registry import LocalRegistry

LISTING = r"/tags/list$|/_catalog$"


class Network:
    def __init__(self, registry: LocalRegistry, rtt: float, lifetime: float = 3600.0) -> None:
        self._upstream = registry
        self._lifetime = lifetime
        self.rtt = rtt
        self.token: FaultProxy | None = None
        self.registry = FaultProxy(registry.url, lifetime=lifetime, delay=rtt)

    def start(self) -> Network:
        server = self._upstream.token_server
        if server is not None:
            realm = server.realm.rsplit("/", 1)[0]
            self.token = FaultProxy(realm, lifetime=self._lifetime, delay=self.rtt).start()
            # Built once the token proxy listens: the realm it rewrites to names its port.
            self.registry = FaultProxy(
                self._upstream.url,
                lifetime=self._lifetime,
                delay=self.rtt,
                also_rewrite={realm: self.token.url},
            )
        self.registry.start()
        return self

    def stop(self) -> None:
        self.registry.stop()
        if self.token is not None:
            self.token.stop()

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self.registry.host

    def reset_counts(self) -> None:
        self.registry.reset_counts()
        if self.token is not None:
            self.token.reset_counts()

    def methods(self) -> Counter[str]:
        """Registry requests per method, plus `token` for the token server's."""
        counts = self.registry.methods()
        if self.token is not None:
            counts["token"] = len(self.token.records)
        return counts

    def listing(self) -> int:
        """Listing pages (`tags/list`, `_catalog`) among the registry requests."""
        return self.registry.count(path=LISTING)

    def total(self) -> int:
        return sum(self.methods().values())

    def _records(self) -> list[Record]:
        return self.registry.records + (self.token.records if self.token else [])

    def span(self) -> float:
        """Seconds from the first request's arrival to the last one's answer."""
        records = [r for r in self._records() if r.finished]
        if not records:
            return 0.0
        return max(r.finished for r in records) - min(r.arrived for r in records)

    def busy(self) -> float:
        """Seconds requests spent in the proxies, summed: over the wall time, the mean number
        of requests in flight (how busy the client kept its workers)."""
        return sum(r.finished - r.arrived for r in self._records() if r.finished)
