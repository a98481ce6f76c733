"""The content cache: verified on every load, private, atomic, bounded, never trusted blindly.

The store on disk in a temp directory; the client against the real registry behind the fault
proxy, which counts what is sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import NotFoundError
from ci_env.options import BackendOptions
from ci_env.registry.cache import ContentStore, split_digest, store_for
from ci_env.registry.client import RegistryClient
from tests.support import images
from tests.support.faultproxy import FaultProxy
from tests.support.registry import LocalRegistry

REPO = "grp/cached"


def body(n: int = 0, size: int = 0) -> bytes:
    return json.dumps({"schemaVersion": 2, "n": n, "pad": "x" * size}).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def disk_only(directory: Path, **kw: int) -> ContentStore:
    """A store that must read the disk every time (another job's view of the directory)."""
    return ContentStore(directory, memory_bytes=0, **kw)


def entry(store: ContentStore, digest: str) -> Path:
    path = store.path(digest)
    assert path is not None
    return path


# ---- the store on disk ----------------------------------------------------------------------


@pytest.mark.parametrize("digest_of", [sha256, sha512])
def test_an_entry_written_by_one_job_is_read_by_the_next(
    tmp_path: Path, digest_of: Callable[[bytes], str]
) -> None:
    data = body()
    disk_only(tmp_path).put(digest_of(data), data)
    assert disk_only(tmp_path).get(digest_of(data)) == data


def test_a_corrupt_entry_is_ignored_and_removed(tmp_path: Path) -> None:
    data = body()
    store = disk_only(tmp_path)
    store.put(sha256(data), data)
    entry(store, sha256(data)).write_bytes(data.replace(b'"n": 0', b'"n": 1'))
    assert store.get(sha256(data)) is None
    assert not entry(store, sha256(data)).exists()


def test_a_truncated_entry_is_ignored_and_removed(tmp_path: Path) -> None:
    data = body(size=100)
    store = disk_only(tmp_path)
    store.put(sha256(data), data)
    entry(store, sha256(data)).write_bytes(data[: len(data) // 2])
    assert store.get(sha256(data)) is None
    assert not entry(store, sha256(data)).exists()


def test_a_foreign_entry_another_digests_bytes_is_ignored_and_removed(tmp_path: Path) -> None:
    mine, foreign = body(1), body(2)
    store = disk_only(tmp_path)
    store.put(sha256(mine), mine)
    entry(store, sha256(mine)).write_bytes(foreign)  # valid JSON, valid for another digest
    assert store.get(sha256(mine)) is None
    assert not entry(store, sha256(mine)).exists()


def test_a_symlinked_entry_is_not_followed_and_is_removed(tmp_path: Path) -> None:
    data = body()
    outside = tmp_path / "outside"
    outside.write_bytes(data)  # even the right bytes: the link could point anywhere
    store = disk_only(tmp_path / "cache")
    store.put(sha256(body(9)), body(9))  # makes the directories
    entry(store, sha256(data)).symlink_to(outside)
    assert store.get(sha256(data)) is None
    assert not entry(store, sha256(data)).is_symlink()
    assert outside.read_bytes() == data


def test_an_entry_under_the_wrong_algorithm_is_ignored(tmp_path: Path) -> None:
    data = body()
    store = disk_only(tmp_path)
    store.put(sha256(data), data)
    wrong = "sha512:" + hashlib.sha256(data).hexdigest() * 2  # a sha512 name, sha256 content
    path = entry(store, wrong)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert store.get(wrong) is None
    assert not path.exists()


def test_an_entry_that_hashes_but_is_not_json_is_ignored_and_removed(tmp_path: Path) -> None:
    data = b"\x00 not a manifest"
    store = disk_only(tmp_path)
    path = entry(store, sha256(data))
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert store.get(sha256(data)) is None
    assert not path.exists()


def test_a_body_that_does_not_hash_to_its_digest_is_never_stored(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    store.put(sha256(body(1)), body(2))
    assert store.get(sha256(body(1))) is None
    assert not entry(store, sha256(body(1))).exists()


@pytest.mark.parametrize(
    "digest", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "a" * 32, "x" * 71]
)
def test_a_malformed_digest_names_no_path(tmp_path: Path, digest: str) -> None:
    store = ContentStore(tmp_path)
    assert split_digest(digest) is None
    assert store.path(digest) is None
    store.put(digest, body())
    assert list(tmp_path.iterdir()) == []


def test_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    data = body()
    old = os.umask(0)
    try:
        disk_only(tmp_path / "ci-env").put(sha256(data), data)
    finally:
        os.umask(old)
    path = entry(disk_only(tmp_path / "ci-env"), sha256(data))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (tmp_path / "ci-env", path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_concurrent_jobs_never_read_a_partial_entry(tmp_path: Path) -> None:
    bodies = [body(n, size=200_000) for n in range(4)]  # big enough to be written in pieces
    seen: list[bytes | None] = []
    wrong: list[bytes] = []

    def job() -> None:
        store = disk_only(tmp_path)  # each thread is its own job on the shared directory
        for _ in range(15):
            for data in bodies:
                store.put(sha256(data), data)
                found = store.get(sha256(data))
                seen.append(found)
                if found is not None and found != data:
                    wrong.append(found)

    threads = [threading.Thread(target=job) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert seen.count(None) == 0  # an entry once written is always whole: never a miss
    folder = entry(disk_only(tmp_path), sha256(bodies[0])).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        sha256(data).split(":")[1] for data in bodies
    )  # no temp file left behind


def test_over_its_size_the_least_recently_used_entries_are_evicted(tmp_path: Path) -> None:
    store = disk_only(tmp_path, max_bytes=5_500)
    items = [body(n, size=900) for n in range(5)]  # ~1 KB each: 5 fit
    for age, data in enumerate(items):
        store.put(sha256(data), data)
        os.utime(entry(store, sha256(data)), (1000 + age, 1000 + age))
    assert store.get(sha256(items[0])) is not None  # used now: the newest
    store.put(sha256(body(5, size=900)), body(5, size=900))
    left = {n for n, data in enumerate(items) if entry(store, sha256(data)).exists()}
    assert 0 in left
    assert 1 not in left  # the least recently used went first
    assert sum(p.stat().st_size for p in entry(store, sha256(items[0])).parent.iterdir()) <= 5_500


def test_an_unwritable_directory_warns_once_and_the_run_goes_on_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")  # even root cannot make a directory under a file
    store = ContentStore(blocked / "ci-env")
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            store.put(sha256(body(n)), body(n))
    assert store.get(sha256(body(1))) == body(1)
    warnings = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1


def test_without_a_directory_nothing_is_written(tmp_path: Path) -> None:
    store = store_for(None)
    store.put(sha256(body()), body())
    assert store.get(sha256(body())) == body()
    assert store.path(sha256(body())) is None


# ---- the client over the store --------------------------------------------------------------


def client(proxy: FaultProxy, reg: LocalRegistry, tmp_path: Path, cache: Path) -> RegistryClient:
    config = tmp_path / "docker"
    config.mkdir(mode=0o700, exist_ok=True)
    auths = {"auths": {proxy.host: {"auth": reg.auth_entry()}}}
    (config / "config.json").write_text(json.dumps(auths))
    options = BackendOptions(docker_config=str(config), cache_dir=str(cache))
    return RegistryClient(proxy.host, options, store=ContentStore(cache))


def sent(proxy: FaultProxy, method: str, part: str) -> int:
    """Requests answered other than by a 401 challenge (a new client's first try)."""
    return sum(
        1 for r in proxy.records if r.method == method and part in r.path and r.status != 401
    )


def gets(proxy: FaultProxy, part: str) -> int:
    return sent(proxy, "GET", part)


@pytest.mark.slow
def test_a_second_client_reads_manifests_and_configs_from_the_cache(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    digest = images.push_image(registry, REPO, "v1", via="http")
    with FaultProxy(registry.url) as proxy:
        first = client(proxy, registry, tmp_path, tmp_path / "cache")
        created = first.image_created(REPO, digest)
        assert first.manifest(REPO, digest).digest == digest  # once per run, not twice
        assert gets(proxy, "/manifests/sha256:") == 1
        assert gets(proxy, "/blobs/") == 1
        proxy.reset_counts()
        second = client(proxy, registry, tmp_path, tmp_path / "cache")
        assert second.image_created(REPO, digest) == created
        assert second.manifest(REPO, digest).digest == digest
    assert gets(proxy, "/manifests/") == 0
    assert gets(proxy, "/blobs/") == 0
    assert sent(proxy, "HEAD", f"/manifests/{digest}") == 1  # here? the registry says


@pytest.mark.slow
def test_a_cached_manifest_missing_from_this_repository_is_still_missing(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    digest = images.push_image(registry, REPO, "v1", via="http")
    with FaultProxy(registry.url) as proxy:
        client(proxy, registry, tmp_path, tmp_path / "cache").manifest(REPO, digest)
        other = client(proxy, registry, tmp_path, tmp_path / "cache")
        with pytest.raises(NotFoundError) as raised:
            other.manifest("grp/elsewhere", digest)  # the content is known, the repo lacks it
    assert raised.value.code == "MANIFEST_UNKNOWN"


def test_a_symlinked_folder_is_neither_written_through_nor_evicted_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("not the cache's")
    (tmp_path / "cache/blobs").mkdir(parents=True)
    (tmp_path / "cache/blobs/sha256").symlink_to(elsewhere)
    store = disk_only(tmp_path / "cache", max_bytes=1)
    with caplog.at_level(logging.WARNING):
        store.put(sha256(body()), body())
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious"]
    assert "cannot be written" in caplog.text


def test_eviction_leaves_files_that_are_not_entries(tmp_path: Path) -> None:
    store = disk_only(tmp_path, max_bytes=1)
    store.put(sha256(body(1)), body(1))  # makes the folder
    stranger = entry(store, sha256(body(1))).parent / "notes.txt"
    stranger.write_text("x" * 5000)
    store.put(sha256(body(2)), body(2))
    assert stranger.exists()
    assert not entry(store, sha256(body(1))).exists()


@pytest.mark.slow
def test_without_a_cache_directory_one_client_still_reads_each_digest_once(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    digest = images.push_image(registry, REPO, "v1", via="http")
    with FaultProxy(registry.url) as proxy:
        config = tmp_path / "docker"
        config.mkdir(mode=0o700)
        auths = {"auths": {proxy.host: {"auth": registry.auth_entry()}}}
        (config / "config.json").write_text(json.dumps(auths))
        memory = RegistryClient(proxy.host, BackendOptions(docker_config=str(config)))
        for _ in range(2):
            memory.image_created(REPO, digest)
            memory.image_revision(REPO, digest)
    assert memory.store.directory is None
    assert gets(proxy, "/manifests/") == 1
    assert gets(proxy, "/blobs/") == 1


def test_json_nested_too_deep_to_parse_is_not_kept(tmp_path: Path) -> None:
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    store = ContentStore(tmp_path)
    store.put(sha256(deep), deep)  # no RecursionError
    assert store.get(sha256(deep)) is None
