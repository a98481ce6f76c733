"""A content-addressed store for what never changes: manifests and config blobs by digest.

A digest names the same bytes on every registry, so entries are keyed by digest only (no host,
no repository, no credentials in a name or a file). What planning learns from a body (media
type, children, subject, config digest, created time, revision) is derived from it again, so
the store keeps the bodies themselves: an entry is then checkable on every load. An entry is
used only if its bytes hash to its digest and parse as a JSON object; anything else (corrupt,
truncated, foreign, a symlink) is removed and read from the registry again.

The store answers *content*, never existence: a digest present here may be gone from, or never
have been in, the repository at hand (the client checks that separately).

Layout: `<dir>/blobs/<algorithm>/<hex>` as in an OCI image layout, directories 0700 and files
0600 whatever the umask. Writers of concurrent jobs sharing the directory write a temp file in
the same directory and `os.replace` it, so a reader sees a whole entry or none. Over
`max_bytes`, the least recently used entries (by mtime; a hit touches it) are evicted. A
directory that cannot be written is warned about once and the run goes on without saving to
it (a read-only one still serves verified entries).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections import OrderedDict
from pathlib import Path

from ci_env import private_files
from ci_env.registry import responses

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MEMORY_BYTES = 64 * 1024 * 1024  # per run: the bodies one run reads twice stay in memory
MAX_ENTRY = 4 * 1024 * 1024  # distribution refuses manifests over 4 MiB; configs are smaller
STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a job that died mid-write
_EVICT_TO = 0.9  # evict down to 90% of the budget, so a full cache is not rescanned per write
# OCI image-spec descriptor.md: the registered algorithms and their encodings (lowercase hex).
_DIGEST = re.compile(r"(sha256):([a-f0-9]{64})|(sha512):([a-f0-9]{128})")
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def split_digest(digest: str) -> tuple[str, str] | None:
    """(algorithm, hex) of a well-formed sha256/sha512 digest; None for anything else, so a
    digest read from a registry can never name a path outside the store."""
    match = _DIGEST.fullmatch(digest)
    if match is None:
        return None
    algorithm, encoded = (match[1], match[2]) if match[1] else (match[3], match[4])
    return algorithm, encoded


def usable(digest: str, body: bytes) -> bool:
    """Whether `body` may be stored or served as `digest`: it hashes to it and is JSON."""
    parts = split_digest(digest)
    if parts is None or len(body) > MAX_ENTRY:
        return False
    algorithm, encoded = parts
    if _HASHES[algorithm](body).hexdigest() != encoded:
        return False
    try:
        return isinstance(responses.loads(body), dict)
    except ValueError:  # UnicodeDecodeError is one; so is JSON nested too deep to parse
        return False


class _Memory:
    """A least-recently-used map of verified bodies, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, digest: str) -> bytes | None:
        body = self._items.get(digest)
        if body is not None:
            self._items.move_to_end(digest)
        return body

    def put(self, digest: str, body: bytes) -> None:
        if len(body) > self.max_bytes or digest in self._items:
            return
        self._items[digest] = body
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= len(dropped)


class ContentStore:
    """Verified bodies by digest: in memory for this run, and on disk under `directory`
    (None: memory only, as with `--no-cache`). Thread-safe; never raises for I/O."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_bytes = max_bytes
        self._memory = _Memory(memory_bytes)
        self._lock = threading.Lock()
        self._disk_bytes: int | None = None  # learnt on the first write
        self._readable = self._writable = directory is not None
        self._warned = False

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            body = self._memory.get(digest)
        if body is None and (body := self._load(digest)) is not None:
            with self._lock:
                self._memory.put(digest, body)
        return body

    def put(self, digest: str, body: bytes) -> None:
        """Keep `body` as `digest` if it is `usable` (anything else is silently not kept)."""
        if not usable(digest, body):
            return
        with self._lock:
            known = self._memory.get(digest) is not None
            self._memory.put(digest, body)
        if not known:
            self._save(digest, body)

    # --- disk -----------------------------------------------------------------------------

    def path(self, digest: str) -> Path | None:
        parts = split_digest(digest)
        if self.directory is None or parts is None:
            return None
        return self.directory / "blobs" / parts[0] / parts[1]

    def _load(self, digest: str) -> bytes | None:
        path = self.path(digest)
        if path is None or not self._readable:
            return None
        try:
            body = _read_regular(path)
        except FileNotFoundError:
            return None
        except OSError as problem:
            self._discard(path, problem)
            return None
        if not usable(digest, body):
            logger.debug("cache entry %s does not verify; removed", digest)
            _unlink(path)
            return None
        try:
            os.utime(path)  # least recently *used*: a hit counts as a use
        except OSError:
            pass  # a read-only cache still serves
        return body

    def _discard(self, path: Path, problem: OSError) -> None:
        """An entry that cannot be read as a regular file (a symlink, a directory, no
        permission): removed where possible; a directory we may not read is warned about."""
        if isinstance(problem, PermissionError):
            self._readable = self._writable = False
            self._warn(problem)
        else:
            _unlink(path)

    def _save(self, digest: str, body: bytes) -> None:
        path = self.path(digest)
        if path is None or not self._writable:
            return
        try:
            private_files.make_dirs(path.parent)
            self._check_folders()
            _write_atomic(path, body)
        except OSError as problem:
            self._writable = False  # what it holds may still be read: entries are verified
            self._warn(problem)
            return
        self._account(len(body))

    def _check_folders(self) -> None:
        """`blobs` and its algorithm folders must be real directories: through a symlink
        planted in a shared cache, writes and evictions would land elsewhere."""
        assert self.directory is not None
        for folder in (self.directory / "blobs", *(self.directory / "blobs" / n for n in _HASHES)):
            if folder.is_symlink():
                raise NotADirectoryError(errno.ENOTDIR, "a symlink where a folder belongs", folder)

    def _warn(self, problem: OSError) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        how = "written; this run goes on without saving to it" if self._readable else "read"
        logger.warning(
            "cache directory %s cannot be %s (%s); --no-cache or another --cache-dir silences this",
            self.directory,
            how,
            problem.strerror or problem,
        )

    def _account(self, added: int) -> None:
        with self._lock:
            if self._disk_bytes is None:
                self._disk_bytes = sum(size for _, size, _ in self._entries())
            else:
                self._disk_bytes += added
            if self._disk_bytes > self.max_bytes:
                self._disk_bytes = self._evict()

    def _entries(self) -> list[tuple[Path, int, float]]:
        """(path, size, mtime) of every entry; stale temp files of dead jobs are removed."""
        found: list[tuple[Path, int, float]] = []
        assert self.directory is not None
        now = time.time()
        for algorithm, folder in ((name, self.directory / "blobs" / name) for name in _HASHES):
            try:
                self._check_folders()
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if not name.startswith(".tmp-") and split_digest(f"{algorithm}:{name}") is None:
                    continue  # not ours: eviction removes only what looks like an entry
                try:
                    info = os.lstat(folder / name)
                except OSError:
                    continue  # evicted or replaced by another job meanwhile
                if name.startswith(".tmp-"):
                    if now - info.st_mtime > STALE_TEMP_SECONDS:
                        _unlink(folder / name)
                    continue
                found.append((folder / name, info.st_size, info.st_mtime))
        return found

    def _evict(self) -> int:
        """Remove least recently used entries down to `_EVICT_TO` of the budget; the total."""
        entries = sorted(self._entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        for path, size, _ in entries:
            if total <= self.max_bytes * _EVICT_TO:
                break
            _unlink(path)
            total -= size
        return total


def _read_regular(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file of at most MAX_ENTRY bytes (no symlink
    followed: an entry pointing elsewhere is foreign)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY:
            raise IsADirectoryError(f"{path} is not a cache entry")
        return handle.read(MAX_ENTRY + 1)


def _write_atomic(path: Path, body: bytes) -> None:
    """Write `body` to a 0600 temp file beside `path`, then rename it over `path`. The temp
    file is opened by hand rather than with `tempfile.mkstemp`: a third fewer cycles per
    entry, and the name is as random."""
    temp = path.parent / f".tmp-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with os.fdopen(os.open(temp, flags, private_files.FILE_MODE), "wb") as out:
            os.fchmod(out.fileno(), private_files.FILE_MODE)  # the umask may take bits away
            out.write(body)
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # gone already (another job evicted it), or a read-only cache


_SHARED: dict[tuple[str, int], ContentStore] = {}
_SHARED_LOCK = threading.Lock()


def store_for(directory: str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> ContentStore:
    """The store of `directory`, one per directory in a process (so every client of a run
    shares it); None: a new memory-only store."""
    if directory is None:
        return ContentStore(None, max_bytes)
    key = (os.path.abspath(directory), max_bytes)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ContentStore(directory, max_bytes)
        return _SHARED[key]
