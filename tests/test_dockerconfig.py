"""Per-job directories: mode, marker, what the copy skips, refusal to delete foreign dirs."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import pytest

from ci_env import dockerconfig
from ci_env.errors import UsageError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_job_dir_is_private_and_marked(tmp_path: Path) -> None:
    job = dockerconfig.create_job_dir(tmp_path / "root")
    assert job.name.startswith(dockerconfig.PREFIX)
    assert _mode(job) == 0o700
    assert _mode(job / dockerconfig.MARKER) == 0o600
    assert dockerconfig.is_job_dir(job)


def test_copy_skips_sockets_fifos_and_docker_state_folders_by_exact_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text('{"auths": {}}')
    (src / "config.json").chmod(0o644)
    (src / "runtime.json").write_text("{}")  # werf's prefix match drops this one
    (src / "buildx-notes.txt").write_text("kept")
    (src / "contexts" / "meta").mkdir(parents=True)
    (src / "contexts" / "meta" / "x.json").write_text("{}")
    (src / "contexts" / "run").mkdir()  # only top-level names are Docker's state folders
    for name in sorted(dockerconfig.SKIP_NAMES):
        (src / name).mkdir()
        (src / name / "payload").write_text("must not be copied")
    os.mkfifo(src / "pipe")
    os.mkfifo(src / "contexts" / "nested-pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "docker.sock"))
    (src / "dangling").symlink_to(src / "nowhere")
    try:
        job = dockerconfig.create_job_dir(tmp_path / "root")
        assert dockerconfig.copy_source(src, job)
    finally:
        sock.close()
    copied = {p.relative_to(job).as_posix() for p in job.rglob("*")}
    assert {"config.json", "runtime.json", "buildx-notes.txt", "contexts/meta/x.json"} <= copied
    assert "contexts/run" in copied
    for name in dockerconfig.SKIP_NAMES:
        assert name not in copied
    assert not {"pipe", "contexts/nested-pipe", "docker.sock", "dangling"} & copied
    assert _mode(job / "config.json") == 0o600
    assert dockerconfig.is_job_dir(job)  # the marker survives the copy


def test_missing_source_gives_empty_config(tmp_path: Path) -> None:
    job = dockerconfig.create_job_dir(tmp_path)
    assert not dockerconfig.copy_source(tmp_path / "absent", job)
    assert not dockerconfig.copy_source(None, job)
    assert [p.name for p in job.iterdir()] == [dockerconfig.MARKER]


def test_remove_refuses_directories_without_marker(tmp_path: Path) -> None:
    home_docker = tmp_path / ".docker"
    home_docker.mkdir()
    (home_docker / "config.json").write_text("{}")
    with pytest.raises(UsageError) as raised:
        dockerconfig.remove_job_dir(home_docker)
    assert raised.value.exit_code == 2
    assert (home_docker / "config.json").exists()
    job = dockerconfig.create_job_dir(tmp_path)
    assert dockerconfig.remove_job_dir(job)
    assert not job.exists()
    assert not dockerconfig.remove_job_dir(job)  # already gone is fine


def test_collect_finds_only_old_marked_directories(tmp_path: Path) -> None:
    old = dockerconfig.create_job_dir(tmp_path)
    new = dockerconfig.create_job_dir(tmp_path)
    foreign = tmp_path / (dockerconfig.PREFIX + "not-ours")
    foreign.mkdir()
    now = time.time()
    os.utime(old / dockerconfig.MARKER, (now - 7 * 3600, now - 7 * 3600))
    stale = dockerconfig.collect(tmp_path, 6 * 3600, now)
    assert [job.path for job in stale] == [old]
    assert {job.path for job in dockerconfig.job_dirs(tmp_path, now)} == {old, new}
    assert dockerconfig.collect(tmp_path / "absent", 0, now) == []
