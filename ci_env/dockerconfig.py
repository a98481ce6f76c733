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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci_env import __version__, private_files, settings
from ci_env.errors import CiEnvError, UsageError

logger = logging.getLogger(__name__)

PREFIX = "ci-env-docker-config-"
MARKER = ".ci-env-job"
CONFIG_FILE = "config.json"
# Docker keeps plug-ins, buildx caches, sockets and desktop state here; copying them crashed on
# sockets and exhausted inodes on buildx caches (werf #3255, #7305). Matched by exact name, not
# by prefix, so `runtime.json` and the like are still copied.
SKIP_NAMES = frozenset({"cli-plugins", "buildx", "machine", "desktop", "run", "mutagen", "scout"})


# The Docker config directory as ci-env, then werf, then docker name it (first set wins).
CONFIG_VARIABLES = ("CIENV_DOCKER_CONFIG", "WERF_DOCKER_CONFIG", "DOCKER_CONFIG")


def named_config_dir(explicit: str | None, env: Mapping[str, str]) -> str | None:
    """The directory --docker-config or a variable names; None when nothing names one."""
    return explicit or settings.env_first(*CONFIG_VARIABLES, env=env)


def config_dir(explicit: str | None, env: Mapping[str, str]) -> Path:
    """The Docker config directory of every command: the one named, else ~/.docker."""
    named = named_config_dir(explicit, env)
    home = env.get("HOME") or os.path.expanduser("~")  # never raises, unlike Path.home()
    return Path(named or Path(home) / ".docker")


def create_job_dir(tmp_root: str | os.PathLike[str]) -> Path:
    """A fresh 0700 directory under `tmp_root` carrying the marker."""
    root = Path(tmp_root)
    try:
        private_files.make_dirs(root)  # a --tmp-dir we create is 0700, whatever the umask
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


# Bounds on what a source config may bring into every job: Docker keeps a few small files and
# folders here (config.json, contexts/meta, trust, TLS certificates).
MAX_DEPTH = 8
MAX_ENTRIES = 10_000
MAX_FILE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_SHOWN = 10  # skipped entries named in the warning


@dataclass
class _Copier:
    """Copies a source directory into a job directory: everything private (0600 files, 0700
    directories, whatever the source's modes and the umask), nothing from outside the source.

    Symlinks are never followed: one pointing inside the source is recreated as a relative
    link to the same entry of the copy (`loop -> .` stays a link, not 50 levels of copies);
    one pointing outside is skipped. Special files (sockets, FIFOs, devices) are skipped, as
    are Docker's state folders at the top, entries past MAX_DEPTH or MAX_ENTRIES and files
    over MAX_FILE_BYTES (a sparse 4 GiB file is not copied into every job).
    """

    root: Path  # the source, symlinks resolved
    dest: Path
    entries: int = 0
    skipped: list[str] = field(default_factory=list)

    def copy(self) -> None:
        self.directory(self.root, self.dest, 1)
        if self.skipped:
            shown = ", ".join(self.skipped[:_SHOWN])
            more = f" and {len(self.skipped) - _SHOWN} more" if len(self.skipped) > _SHOWN else ""
            logger.warning("not copied from the Docker config %s: %s%s", self.root, shown, more)

    def skip(self, path: Path, why: str) -> None:
        self.skipped.append(f"{path.relative_to(self.root)} ({why})")

    def directory(self, src: Path, dst: Path, depth: int) -> None:
        with os.scandir(src) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            path = Path(entry.path)
            if src == self.root and (entry.name in SKIP_NAMES or entry.name == MARKER):
                logger.debug("not copying Docker's %s from %s", entry.name, src)
                continue
            self.entries += 1
            if self.entries > MAX_ENTRIES:
                self.skip(path, f"more than {MAX_ENTRIES} entries: the rest too")
                return
            self.entry(entry, path, dst / entry.name, depth)

    def entry(self, entry: os.DirEntry[str], path: Path, target: Path, depth: int) -> None:
        if entry.is_symlink():
            self.link(path, target)
        elif entry.is_dir(follow_symlinks=False):
            if depth >= MAX_DEPTH:
                self.skip(path, f"deeper than {MAX_DEPTH} levels")
                return
            target.mkdir(mode=0o700)
            target.chmod(0o700)
            self.directory(path, target, depth + 1)
        elif entry.is_file(follow_symlinks=False):
            if entry.stat(follow_symlinks=False).st_size > MAX_FILE_BYTES:
                self.skip(path, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
                return
            self.file(path, target)
        else:
            logger.debug("not copying %s: not a regular file or directory", path)

    def link(self, path: Path, target: Path) -> None:
        resolved = Path(os.path.realpath(path))
        inside = resolved == self.root or self.root in resolved.parents
        if not inside:
            self.skip(path, "a symlink to outside the source")
            return
        if not resolved.exists():
            logger.debug("not copying the dangling symlink %s", path)
            return
        twin = self.dest / resolved.relative_to(self.root)
        target.symlink_to(os.path.relpath(twin, target.parent))

    def file(self, path: Path, target: Path) -> None:
        """Copy one file; O_NOFOLLOW so that a file swapped for a symlink meanwhile is not read."""
        try:
            src = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            self.skip(path, error.strerror or "unreadable")
            return
        with os.fdopen(src, "rb") as reader:
            if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
                self.skip(path, "replaced while copying")
                return
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with os.fdopen(os.open(target, flags, 0o600), "wb") as writer:
                os.fchmod(writer.fileno(), 0o600)
                size = 0
                while chunk := reader.read(_CHUNK):
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:  # grew since we looked
                        break
                    writer.write(chunk)
        if size > MAX_FILE_BYTES:
            target.unlink()
            self.skip(path, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")


def copy_source(source: str | os.PathLike[str] | None, dest: Path) -> bool:
    """Copy the Docker config directory `source` into `dest`; False when there is none."""
    if source is None or not Path(source).is_dir():
        return False
    src = Path(os.path.realpath(source))
    try:
        _Copier(src, dest).copy()
    except OSError as error:
        raise CiEnvError(
            f"cannot copy the Docker config from {src}: {error}",
            "check that the directory is readable, or pass --docker-config with another one",
        ) from error
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
