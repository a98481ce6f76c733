"""`ci-env gc`: removes only old, marked job directories."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ci_env import dockerconfig
from tests.support.clirun import base_env, run_cli


def test_gc_removes_old_marked_directories_only(tmp_path: Path) -> None:
    old = dockerconfig.create_job_dir(tmp_path)
    fresh = dockerconfig.create_job_dir(tmp_path)
    foreign = tmp_path / f"{dockerconfig.PREFIX}unmarked"
    foreign.mkdir()
    then = time.time() - 7 * 3600
    os.utime(old / dockerconfig.MARKER, (then, then))
    env = base_env(tmp_path / "home", RUNNER_TEMP=str(tmp_path))
    dry = run_cli("gc", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {old}" in dry.stdout
    assert old.exists()
    result = run_cli("gc", env=env)
    assert result.returncode == 0, result.stderr
    assert not old.exists()
    assert fresh.exists()
    assert foreign.exists()
    short = run_cli("gc", "--older-than", "0s", "--tmp-dir", str(tmp_path), env=env)
    assert short.returncode == 0
    assert not fresh.exists()
    assert foreign.exists()


def test_gc_bad_duration_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("gc", "--older-than", "six hours", env=base_env(tmp_path))
    assert result.returncode == 2
    assert "--older-than" in result.stderr
