"""`ci-env cleanup --shard auto`: the share comes from GitLab's `parallel: N` variables.

The end-to-end split is tested with the GitLab component (tests/shipping/test_gitlab_component.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.clirun import base_env, run_cli

UNREACHABLE = "127.0.0.1:9/grp/app"  # the shard is parsed before any request


def test_auto_reads_ci_node_index_and_total(tmp_path: Path) -> None:
    env = base_env(tmp_path, CI_NODE_INDEX="3", CI_NODE_TOTAL="2")
    result = run_cli("cleanup", "--repo", UNREACHABLE, "--shard", "auto", env=env)
    assert result.returncode == 2, result.stderr
    assert "--shard '3/2' is not I/N" in result.stderr


def test_auto_outside_a_parallel_job_is_no_sharding(tmp_path: Path) -> None:
    result = run_cli(
        "cleanup", "--repo", UNREACHABLE, "--shard", "auto", env=base_env(tmp_path), timeout=120
    )
    assert "shard" not in result.stderr, result.stderr
    assert result.returncode != 2, result.stderr
