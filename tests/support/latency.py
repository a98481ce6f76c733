"""A loopback TCP relay adding latency: each chunk a client sends reaches the upstream `delay`
seconds later, so a request on a kept-alive connection costs one extra round trip. Bytes pass
untouched (TLS too); it listens on 127.0.0.1 and stops by itself after `lifetime` seconds.

Hand-written on sockets because an HTTP proxy (`faultproxy.py`) parses and re-sends every
request, a CPU cost that would blur the client's own in a benchmark.
"""

from __future__ import annotations

import socket
import threading
import time


class LatencyRelay:
    def __init__(self, upstream: str, delay: float, lifetime: float = 600.0) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> LatencyRelay:
        threading.Thread(target=self._accept, daemon=True).start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._listener.close()

    def __enter__(self) -> LatencyRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # stopped
                return
            upstream = socket.create_connection(self.upstream)
            for pair in ((client, upstream, self.delay), (upstream, client, 0.0)):
                threading.Thread(target=_pump, args=pair, daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
    """Copy `source` to `sink`, each chunk `delay` seconds late, until either side closes."""
    try:
        while chunk := source.recv(65536):
            if delay:
                time.sleep(delay)
            sink.sendall(chunk)
    except OSError:
        pass  # the other side went away: the relay of this connection ends
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already shut down
        source.close()  # each socket is the source of one pump: closed once
