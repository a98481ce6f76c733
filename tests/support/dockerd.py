"""A private Debian `dockerd` for tests, and a locally made base image (no registry pulls).

`Dockerd` starts `/usr/sbin/dockerd` with its socket, data-root, exec-root and pidfile under
a temp dir (vfs storage, no iptables, no bridge: nothing on the host's network changes) and
stops it on `close()`, at interpreter exit, or after `lifetime` seconds. `debian_base()`
makes a minimal Debian bookworm with python3 by `debootstrap` (Debian's mirror is reachable as
Debian's packages) and imports it; the root filesystem tarball is cached under CACHE_DIR, so
only the first run pays for debootstrap. `wheels()` fills a cached wheel folder for
requirements.lock so the image builds with no index.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import docker

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
CACHE_DIR = Path(os.environ.get("CIENV_TEST_CACHE", "/var/tmp/ci-env-test-cache"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# python3-venv: the Dockerfile builds its venv with the base's own Python; git, which it
# would otherwise apt-get, for keep.git.
BASE_PACKAGES = "python3,python3-venv,ca-certificates,git"
BASE_TAG = "ci-env-test/debian-python:bookworm"


class DockerdUnavailable(RuntimeError):
    """dockerd could not start here; the message says why (for pytest.skip)."""


class Dockerd:
    def __init__(self, lifetime: float = 1800.0) -> None:
        # Short path: the socket path must fit in sun_path (108 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="cienv-dockerd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client: docker.DockerClient | None = None
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True

    def start(self, timeout: float = 60.0) -> Dockerd:
        if not os.path.exists(DOCKERD):
            raise DockerdUnavailable(f"{DOCKERD} is not installed (apt-get install docker.io)")
        if os.geteuid() != 0:
            raise DockerdUnavailable("dockerd needs root here (no rootless setup)")
        args = [
            DOCKERD,
            f"--host={self.url}",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        atexit.register(self.close)
        self._timer.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.close()
                raise DockerdUnavailable(f"dockerd exited: {tail}")
            try:
                client = docker.DockerClient(base_url=self.url, timeout=600)
                client.ping()
                self.client = client
                return self
            except docker.errors.DockerException:
                time.sleep(0.3)
        self.close()
        raise DockerdUnavailable(f"dockerd did not answer within {timeout:.0f}s")

    def close(self) -> None:
        self._timer.cancel()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        # dockerd leaves its default network namespace bind-mounted under exec-root.
        for mount_point in _mounts_under(self.root):
            subprocess.run(["umount", "--lazy", mount_point], check=False, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    return sorted((p for p in points if p.startswith(f"{root}/")), reverse=True)


def rootfs_tarball() -> Path:
    """debootstrap once, cache the tarball; later runs reuse it."""
    tarball = CACHE_DIR / f"debian-{SUITE}-python-v3.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("debootstrap"):
        raise DockerdUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cienv-rootfs-", dir=CACHE_DIR))
    try:
        rootfs = work / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=900,
        )
        # Package lists, caches and docs only make the base bigger (and vfs copies it whole
        # for every build step and container).
        junk_dirs = (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
        )
        for junk in junk_dirs:
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        partial = work / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
            timeout=600,
        )
        partial.rename(tarball)  # atomic: a crashed run never leaves half a tarball cached
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def debian_base(client: docker.DockerClient) -> str:
    """Tag of a local Debian bookworm + python3 image (imported, never pulled)."""
    with open(rootfs_tarball(), "rb") as data:
        client.api.import_image_from_data(
            data.read(), repository=BASE_TAG.split(":")[0], tag=BASE_TAG.split(":")[1]
        )
    return BASE_TAG


def wheels(lock: Path) -> Path:
    """A folder with wheels for every line of `lock`, plus the build backend, cached by hash."""
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    folder = CACHE_DIR / f"wheels-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(folder)]
    subprocess.run([*pip, "--no-deps", "-r", str(lock)], check=True, timeout=900)
    subprocess.run([*pip, "setuptools>=68", "wheel"], check=True, timeout=300)
    (folder / ".complete").touch()
    return folder
