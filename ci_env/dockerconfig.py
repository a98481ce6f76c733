"""Per-job Docker config directories: create, copy a source config into, remove, collect.

A job directory is `<tmp>/ci-env-docker-config-XXXX`, mode 0700, holding a marker file. The
marker is how `ci-env logout` and `ci-env gc` know a directory is ours and safe to delete — a
directory without it is never removed (werf keeps a global registry of symlinks instead, which
goes stale). Credentials inside are handled by `ci_env.credstore`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ci_env import __version__
from ci_env.errors import CiEnvError, UsageError

logger = logging.getLogger(__name__)

PREFIX = "ci-env-docker-config-"
MARKER = ".ci-env-job"
CONFIG_FILE = "config.json"
# Docker keeps plug-ins, buildx caches, sockets and desktop state here; copying them crashed on
# sockets and exhausted inodes on buildx caches (werf #3255, #7305). Matched by exact name, not
# by prefix, so `runtime.json` and the like are still copied.
SKIP_NAMES = frozenset({"cli-plugins", "buildx", "machine", "desktop", "run", "mutagen", "scout"})


def create_job_dir(tmp_root: str | os.PathLike[str]) -> Path:
    """A fresh 0700 directory under `tmp_root` carrying the marker."""
    root = Path(tmp_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    except OSError as error:
        raise UsageError(
            f"cannot create a job directory under {root}: {error.strerror}",
            "point --tmp-dir or CIENV_TMP_DIR at a writable directory",
        ) from error
    path.chmod(0o700)
    _write_marker(path)
    return path


def _write_marker(path: Path) -> None:
    marker = {"created": time.time(), "pid": os.getpid(), "version": __version__}
    fd = os.open(path / MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(marker, out)


def is_job_dir(path: str | os.PathLike[str]) -> bool:
    candidate = Path(path)
    return candidate.is_dir() and not candidate.is_symlink() and (candidate / MARKER).is_file()


def _ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    """A `copytree` ignore function: special files anywhere, Docker's state folders at the top."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped: set[str] = set()
        top = Path(directory) == root
        for name in names:
            if top and (name in SKIP_NAMES or name == MARKER):
                skipped.add(name)
                continue
            try:
                mode = os.stat(os.path.join(directory, name)).st_mode
            except OSError:
                skipped.add(name)  # dangling symlink or vanished while copying
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                skipped.add(name)  # sockets, FIFOs, devices: copying them hangs or crashes
        if skipped:
            logger.debug("not copying %s from %s", sorted(skipped), directory)
        return skipped

    return ignore


def copy_source(source: str | os.PathLike[str] | None, dest: Path) -> bool:
    """Copy the Docker config directory `source` into `dest`; False when there is none."""
    if source is None or not Path(source).is_dir():
        return False
    src = Path(source)
    try:
        shutil.copytree(
            src,
            dest,
            ignore=_ignore(src),
            dirs_exist_ok=True,
            ignore_dangling_symlinks=True,
        )
    except (OSError, shutil.Error) as error:
        raise CiEnvError(
            f"cannot copy the Docker config from {src}: {error}",
            "check that the directory is readable, or pass --docker-config with another one",
        ) from error
    config = dest / CONFIG_FILE
    if config.is_file():
        config.chmod(0o600)  # it holds credentials, whatever the source's mode was
    return True


def remove_job_dir(path: str | os.PathLike[str]) -> bool:
    """Delete a job directory; refuses anything without the marker. False when already gone."""
    target = Path(path)
    if not target.exists():
        return False
    if not is_job_dir(target):
        raise UsageError(
            f"{target} is not a ci-env job directory (no {MARKER} marker); not removing it",
            "logout without a registry only removes a directory made by `ci-env env`; "
            "use `ci-env logout REGISTRY` to remove one registry's credentials",
        )
    shutil.rmtree(target)
    return True


@dataclass(frozen=True)
class JobDir:
    path: Path
    age: float  # seconds since the marker was written


def job_dirs(tmp_root: str | os.PathLike[str], now: float) -> Iterator[JobDir]:
    """Our job directories directly under `tmp_root` (ones owned by someone else are skipped)."""
    root = Path(tmp_root)
    if not root.is_dir():
        return
    uid = os.getuid()
    for entry in sorted(root.glob(f"{PREFIX}*")):
        try:
            if not is_job_dir(entry) or entry.stat().st_uid != uid:
                continue
            created = (entry / MARKER).stat().st_mtime
        except OSError:
            continue  # removed concurrently
        yield JobDir(entry, max(0.0, now - created))


def collect(tmp_root: str | os.PathLike[str], older_than: float, now: float) -> list[JobDir]:
    """Job directories older than `older_than` seconds (left by crashed jobs)."""
    return [job for job in job_dirs(tmp_root, now) if job.age >= older_than]
