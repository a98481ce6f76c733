"""`ci-env cleanup` reads the options and the environment once, in `cleanup.resolve`: the run
that follows works from the frozen `Settings` alone (no lazy `CIENV_*` reads mid-run)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ci_env import cli, settings
from ci_env.commands import cleanup
from tests.support import images
from tests.support.clirun import base_env
from tests.support.registry import LocalRegistry

REPO = "grp/app"
OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class SealedEnv(Mapping[str, str]):
    """An environment that fails the test on any read once `sealed` is set."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = dict(data)
        self.sealed = False

    def _check(self, what: str) -> None:
        if self.sealed:
            raise AssertionError(f"the environment was read ({what}) after the settings were built")

    def __getitem__(self, key: str) -> str:
        self._check(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        self._check("iteration")
        return iter(self.data)

    def __len__(self) -> int:
        self._check("len")
        return len(self.data)


def test_a_cleanup_run_reads_the_environment_only_in_its_settings_function(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for tag in ("v1", "pr-1"):
        images.push_image(registry, REPO, tag, created=OLD, via="http")
    config = tmp_path / "docker"
    config.mkdir(mode=0o700)
    entry = {"auths": {registry.host: {"auth": registry.auth_entry()}}}
    (config / "config.json").write_text(json.dumps(entry))
    summary, report = tmp_path / "summary.md", tmp_path / "report.json"
    env = SealedEnv(
        base_env(tmp_path, DOCKER_CONFIG=str(config))
        | {
            "CIENV_REPO": f"{registry.host}/{REPO}",  # read by the run itself before
            "CI_NODE_INDEX": "1",
            "CI_NODE_TOTAL": "1",
            "CI_REGISTRY": "gitlab.example.com",
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(summary),  # the provider writes it at the very end
        }
    )
    monkeypatch.setattr(settings, "environ", lambda: env)
    resolve = cleanup.resolve

    def resolve_then_seal(args: argparse.Namespace, given: Mapping[str, str]) -> cleanup.Settings:
        assert given is env
        try:
            return resolve(args, given)
        finally:
            env.sealed = True

    monkeypatch.setattr(cleanup, "resolve", resolve_then_seal)
    argv = ["--shard", "auto", "--delete-tag", "pr-.*", "--keep-newer-than", "0s"]
    code = cli.main(["cleanup", *argv, "--report-json", str(report)])
    assert code == 0, capsys.readouterr().err
    assert env.sealed
    assert images.list_tags(registry, REPO) == ["v1"]
    assert "pr-1" in summary.read_text()
    assert json.loads(report.read_text())["exit_code"] == 0


def test_settings_are_frozen_and_resolved_from_the_environment(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["cleanup", "--shard", "auto", "--parallel", "0"])
    env = {
        "CIENV_REPO": "r.example/app",
        "CI_NODE_INDEX": "2",
        "CI_NODE_TOTAL": "3",
        "WERF_REPO_CONTAINER_REGISTRY": "harbor",
        "CI_REGISTRY": "gitlab.example.com",
        "WERF_DRY_RUN": "yes",
        "HOME": str(tmp_path),
    }
    found = cleanup.resolve(args, env)
    assert found.repos == ("r.example/app",)
    assert found.shard == "2/3"
    assert found.dry_run is True
    assert found.parallel == 1
    assert found.registries.kind == "harbor"
    assert found.registries.gitlab_host == "gitlab.example.com"
    assert found.registries.options.docker_config == str(tmp_path / ".docker")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.dry_run = False  # type: ignore[misc]
