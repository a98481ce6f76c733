"""Every command finds the Docker config in the same place: --docker-config, then
CIENV_DOCKER_CONFIG, WERF_DOCKER_CONFIG, DOCKER_CONFIG, then ~/.docker (`dockerconfig.config_dir`).

env, login and logout run in-process through `cli.main` and are judged by what they did (the
config copied, the credential saved, the one removed); cleanup by its resolved settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_env import cli
from ci_env.commands import cleanup

NAMES = ("given", "cienv", "werf", "docker", "home")
VARIABLES = {
    "cienv": "CIENV_DOCKER_CONFIG",
    "werf": "WERF_DOCKER_CONFIG",
    "docker": "DOCKER_CONFIG",
}
REGISTRY = "r.example"

# (variables set, whether --docker-config is given) -> the directory every command must use
CASES = [
    (("docker",), False, "docker"),
    (("cienv", "docker"), False, "cienv"),
    (("werf", "docker"), False, "werf"),
    (("cienv", "werf", "docker"), False, "cienv"),
    ((), False, "home"),
    (("cienv", "docker"), True, "given"),
]


def _dirs(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in NAMES}
    found["home"] = tmp_path / "home" / ".docker"
    for name, path in found.items():
        path.mkdir(parents=True)
        (path / "config.json").write_text(json.dumps({"auths": {}, "test-dir": name}))
    return found


def _environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dirs: dict[str, Path], names: tuple[str, ...]
) -> dict[str, str]:
    for variable in ("GITHUB_ACTIONS", "GITLAB_CI", "CI_REGISTRY", *VARIABLES.values()):
        monkeypatch.delenv(variable, raising=False)
    env = {VARIABLES[name]: str(dirs[name]) for name in names}
    env |= {
        "HOME": str(tmp_path / "home"),
        "CIENV_TMP_DIR": str(tmp_path / "tmp"),
        "CIENV_REGISTRY": REGISTRY,
        "CIENV_REGISTRY_USERNAME": "u",
        "CIENV_REGISTRY_PASSWORD": "pw-docker-config-sentinel",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _which(dirs: dict[str, Path], found: Path) -> str:
    return next(name for name, path in dirs.items() if path == found)


@pytest.mark.parametrize(("names", "given", "expected"), CASES)
def test_every_command_uses_the_same_docker_config(
    names: tuple[str, ...],
    given: bool,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dirs = _dirs(tmp_path)
    env = _environ(monkeypatch, tmp_path, dirs, names)
    option = ["--docker-config", str(dirs["given"])] if given else []

    assert cli.main(["env", "--no-login", "--format", "json", *option]) == 0
    job = Path(json.loads(capsys.readouterr().out)["DOCKER_CONFIG"])
    assert json.loads((job / "config.json").read_text())["test-dir"] == expected, "env"

    assert cli.main(["login", REGISTRY, "--no-verify", *option]) == 0
    saved = [
        n
        for n, p in dirs.items()
        if REGISTRY in json.loads((p / "config.json").read_text())["auths"]
    ]
    assert saved == [expected], "login"

    capsys.readouterr()
    assert cli.main(["logout", REGISTRY, *option]) == 0
    assert f"from {dirs[expected]}" in capsys.readouterr().err, "logout"

    args = cli.build_parser().parse_args(["cleanup", *option])
    resolved = cleanup.resolve(args, env).registries.options.docker_config
    assert _which(dirs, Path(resolved or "")) == expected, "cleanup"


def test_logout_without_a_registry_removes_the_directory_the_variables_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = _dirs(tmp_path)
    _environ(monkeypatch, tmp_path, dirs, ("werf",))
    assert cli.main(["env", "--no-login", "--format", "json"]) == 0
    job = json.loads(capsys.readouterr().out)["DOCKER_CONFIG"]
    monkeypatch.setenv("WERF_DOCKER_CONFIG", job)  # as a werf-style job exports it
    assert cli.main(["logout"]) == 0
    assert not Path(job).exists()
    assert dirs["werf"].exists()
