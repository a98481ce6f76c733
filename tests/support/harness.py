"""Shared helpers for the reliability suite and `bench/reliability_report.py`.

`ci-env` always runs as a real child process (`python -m ci_env`) with a minimal environment,
so exit codes, stderr and tracebacks are exactly what a CI job would see. Registries with
chosen users are the lead's `LocalRegistry` with its htpasswd file rewritten before start.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.registry import LocalRegistry, _htpasswd

ROOT = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class Result:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return f"ci-env {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A CI-like environment: nothing of the developer's machine leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
        "TMPDIR": str(home),
    }
    env.update(extra)
    return env


def command(args: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "ci_env", *args]


def run_cli(
    args: Iterable[str],
    env: Mapping[str, str],
    *,
    stdin: str | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> Result:
    argv = list(args)
    start = time.monotonic()
    proc = subprocess.run(
        command(argv),
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        check=False,
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def assert_clean_failure(result: Result, code: int | None = 2) -> None:
    """A user error: the expected exit code, an `error:` line, never a traceback."""
    assert TRACEBACK not in result.output, result.describe()
    if code is not None:
        assert result.code == code, result.describe()
    else:
        assert result.code != 0, result.describe()
    assert "error" in result.stderr.lower(), result.describe()


def registry_with_users(users: Mapping[str, str], auth: str = "htpasswd") -> LocalRegistry:
    """A started `LocalRegistry` whose htpasswd holds exactly `users` (plus its own `ci`)."""
    reg = LocalRegistry("htpasswd")
    everyone = {reg.username: reg.password, **users}
    _htpasswd(reg.root / "htpasswd", everyone)
    return reg.start()


def auth_of(config_dir: Path, host: str) -> tuple[str, str] | None:
    """(user, password) stored in `auths[host]` of config.json, or None."""
    data = json.loads((config_dir / "config.json").read_text())
    entry = data.get("auths", {}).get(host)
    if not entry or "auth" not in entry:
        return None
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


def write_auth_config(directory: Path, entries: Mapping[str, tuple[str, str]]) -> Path:
    """config.json with `auths` for each host (0600 in a 0700 directory); returns directory."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    auths = {
        host: {"auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}
        for host, (user, pw) in entries.items()
    }
    path = directory / "config.json"
    path.write_text(json.dumps({"auths": auths}))
    path.chmod(0o600)
    return directory


@dataclass
class ArgvWatch:
    """Polls every process's /proc/PID/cmdline while commands run, collecting any that holds
    one of `needles` (a secret in argv is readable by every user on the machine)."""

    needles: tuple[str, ...]
    interval: float = 0.002
    hits: list[str] = field(default_factory=list)
    scans: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ArgvWatch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) == me:
                    continue
                try:
                    raw = Path(entry.path, "cmdline").read_bytes()
                except OSError:
                    continue
                text = raw.replace(b"\0", b" ").decode(errors="replace")
                self.hits.extend(text for n in self.needles if n in text)
            self.scans += 1
            self._stop.wait(self.interval)


def files_containing(root: Path, needles: Iterable[str]) -> list[str]:
    """Every file under `root` whose bytes contain one of `needles`."""
    wanted = [n.encode() for n in needles]
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found.extend(f"{path}: {n.decode()}" for n in wanted if n in data)
    return found
