"""Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, for tests and benchmarks.

`LocalRegistry` runs one registry process with delete enabled and either htpasswd Basic auth
or Bearer tokens from `TokenServer`. Storage lives in a temporary directory, so `stop()` +
`start()` restarts the same registry (for kill-and-restart tests). Every process it starts is
stopped by `close()` (also at interpreter exit), and bounded by `lifetime` seconds otherwise.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal

import requests

from tests.support.ports import free_port
from tests.support.tokenserver import ISSUER, SERVICE, TokenServer

USERNAME = "ci"
PASSWORD = "s3cret-registry-pass"
READER = "reader"
READER_PASSWORD = "reader-pass-123"
BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def _htpasswd(path: Path, users: dict[str, str]) -> None:
    import bcrypt  # noqa: PLC0415 - only needed here; registry 2.8 accepts bcrypt only

    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")


class LocalRegistry:
    def __init__(
        self,
        auth: Literal["htpasswd", "token", "none"] = "htpasswd",
        lifetime: float = 1800.0,
    ) -> None:
        self.auth = auth
        self.lifetime = lifetime
        self.username, self.password = USERNAME, PASSWORD
        self.port = free_port()
        # Storage in memory where possible: removing thousands of small files from a disk
        # mounted with `discard` takes tens of seconds.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="ci-env-registry-", dir=shm))
        self.storage = self.root / "storage"
        self.storage.mkdir()
        self.process: subprocess.Popen[bytes] | None = None
        self.token_server: TokenServer | None = None
        self._config = self._write_config()
        atexit.register(self.close)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _write_config(self) -> Path:
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "ci-env-test-secret"},
        }
        if self.auth == "htpasswd":
            htpasswd = self.root / "htpasswd"
            _htpasswd(htpasswd, {USERNAME: PASSWORD, READER: READER_PASSWORD})
            config["auth"] = {"htpasswd": {"realm": "ci-env-test", "path": str(htpasswd)}}
        elif self.auth == "token":
            users = {USERNAME: (PASSWORD, ("*",)), READER: (READER_PASSWORD, ("pull",))}
            self.token_server = TokenServer(users, free_port())
            self.token_server.start()
            cert = self.token_server.write_cert(self.root / "token.pem")
            config["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(cert),
                }
            }
        path = self.root / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def start(self, timeout: float = 20.0) -> LocalRegistry:
        if self.process and self.process.poll() is None:
            return self
        log = open(self.root / "registry.log", "ab")  # noqa: SIM115 - owned by the process
        # `timeout` bounds the registry's life even if the test run is killed.
        self.process = subprocess.Popen(
            ["timeout", str(int(self.lifetime)), BINARY, "serve", str(self._config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_tail()}")
            try:
                requests.get(f"{self.url}/v2/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not start: {self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the registry has used so far: its process group's."""
        assert self.process is not None, "start() the registry first"
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) == self.process.pid:  # pgrp: `timeout` leads the group
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self) -> str:
        path = self.root / "registry.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Kill the registry process (storage is kept; `start()` brings it back)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self.token_server:
            self.token_server.stop()
            self.token_server = None
        shutil.rmtree(self.root, ignore_errors=True)

    # --- credentials ---------------------------------------------------------------------

    def auth_entry(self, username: str | None = None, password: str | None = None) -> str:
        user = username or self.username
        secret = password if password is not None else self.password
        return base64.b64encode(f"{user}:{secret}".encode()).decode()

    def write_docker_config(
        self, directory: Path | str, username: str | None = None, password: str | None = None
    ) -> Path:
        """Write `directory/config.json` holding this registry's credentials; returns directory."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = {"auths": {self.host: {"auth": self.auth_entry(username, password)}}}
        (path / "config.json").write_text(json.dumps(config))
        (path / "config.json").chmod(0o600)
        return path

    def session(self) -> requests.Session:
        """A requests session that can talk to this registry (for seeding and assertions)."""
        from tests.support.regsession import RegistrySession  # noqa: PLC0415

        return RegistrySession(self)
