"""The Docker image, built offline by a private dockerd and run the way the GitHub runner runs a
container Action (actions/runner ContainerActionHandler.cs): `INPUT_*` and `GITHUB_*`
variables, HOME=/github/home, the runner's temp dirs, file commands and workspace mounted, the
image's own entrypoint and user, `--network host` to reach the local registry.

Steps: `command: env` (per-job config + login) -> a later host step uses the exported
DOCKER_CONFIG with skopeo -> `command: cleanup` -> the post step removes the config; on both
runner layouts: GitHub-hosted (everything mounted is uid 1001's) and a self-hosted root runner.
The image reference and post entrypoint come from action.yml as a release pins it
(scripts/release.py pin), with the published reference rewritten to the image built here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest
import yaml

import ci_env
import entrypoint
from tests.support import dockerd
from tests.support.images import list_tags, push_image, skopeo_inspect
from tests.support.registry import LocalRegistry
from tests.support.tools import unavailable

# A fresh machine debootstraps the base first (minutes, once per cache).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ci-env:test"
HOSTED_UID = 1001  # the GitHub-hosted runner's user, owner of everything it mounts
CONTEXT_FILES = (
    "ci_env",
    "pyproject.toml",
    "README.md",
    "requirements.lock",
    "entrypoint.py",
    "post_entrypoint.py",
    "Dockerfile",
    ".dockerignore",
)


@dataclass
class Built:
    client: docker.DockerClient
    seconds: float
    size_mb: float
    digest: str  # the local image id, standing for the published digest


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    try:
        daemon = dockerd.Dockerd().start()
    except dockerd.DockerdUnavailable as error:
        unavailable(f"dockerd cannot start here: {error}")
    try:
        assert daemon.client is not None
        client = daemon.client
        started = time.monotonic()
        base = dockerd.debian_base(client)
        context = tmp_path_factory.mktemp("context")
        for name in CONTEXT_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, context / name)
            elif source.exists():
                shutil.copy2(source, context / name)
        shutil.copytree(dockerd.wheels(ROOT / "requirements.lock"), context / "wheels")
        try:
            built, _ = client.images.build(
                path=str(context),
                tag=IMAGE,
                network_mode="none",  # proves the build needs no index
                rm=True,
                buildargs={
                    "BASE_IMAGE": base,
                    "PIP_NO_INDEX": "1",
                    "PIP_FIND_LINKS": "/src/wheels",
                },
            )
        except docker.errors.BuildError as error:
            log = "".join(str(line.get("stream", line)) for line in error.build_log)
            pytest.fail(f"docker build failed:\n{log[-4000:]}")
        seconds = time.monotonic() - started
        size = built.attrs["Size"] / 1e6
        print(f"\nimage built in {seconds:.0f}s (debootstrap base cached), size {size:.0f} MB")
        yield Built(client, seconds, size, built.id)
    finally:
        daemon.close()


def released_action(tmp_path: Path, built: str) -> dict[str, str]:
    """action.yml's `runs:` as the release pins it, its image rewritten to the local `built`."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    shutil.copy2(ROOT / "action.yml", tmp_path / "action.yml")
    version = ci_env.__version__
    pin = [sys.executable, str(tmp_path / "scripts" / "release.py"), "pin", version, built]
    subprocess.run(pin, check=True, timeout=60)
    runs: dict[str, str] = yaml.safe_load((tmp_path / "action.yml").read_text())["runs"]
    published = re.escape(f"docker://ghcr.io/ci-env/ci-env:{version}@{built}")
    assert re.fullmatch(published, runs["image"]), runs
    return {**runs, "image": IMAGE}


class Runner:
    """The directories a GitHub runner prepares for one job, owned by the runner's user."""

    def __init__(self, root: Path, uid: int = HOSTED_UID) -> None:
        self.uid = uid
        self.temp = root / "work" / "_temp"
        self.home = self.temp / "_github_home"
        self.commands = self.temp / "_runner_file_commands"
        self.workflow = self.temp / "_github_workflow"
        self.workspace = root / "work" / "repo" / "repo"
        for folder in (self.home, self.commands, self.workflow, self.workspace):
            folder.mkdir(parents=True)
        for folder in (
            root / "work",
            self.temp,
            self.home,
            self.commands,
            self.workflow,
            self.workspace,
            self.workspace.parent,
        ):
            os.chown(folder, uid, uid)
        self.step = 0

    def files(self) -> dict[str, Path]:
        """Fresh file-command files for one step, as the runner creates them."""
        self.step += 1
        names = {
            "GITHUB_ENV": "set_env",
            "GITHUB_OUTPUT": "set_output",
            "GITHUB_STATE": "save_state",
            "GITHUB_STEP_SUMMARY": "step_summary",
            "GITHUB_PATH": "add_path",
        }
        files = {}
        for variable, prefix in names.items():
            path = self.commands / f"{prefix}_{self.step}"
            path.touch()
            os.chown(path, self.uid, self.uid)
            files[variable] = path
        return files

    def run(
        self,
        client: docker.DockerClient,
        inputs: dict[str, str],
        env: dict[str, str] | None = None,
        entrypoint: str | None = None,
        image: str = IMAGE,
    ) -> tuple[int, str, dict[str, Path]]:
        files = self.files()
        environment = {
            "HOME": "/github/home",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": "/github/workspace",
            "GITHUB_REPOSITORY": "octo-org/octo-repo",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_RUN_ID": "42",
            "RUNNER_TEMP": str(self.temp),  # the host path: the runner mounts only subfolders
            **{name: f"/github/file_commands/{path.name}" for name, path in files.items()},
            **{f"INPUT_{name.upper()}": value for name, value in inputs.items()},
            **(env or {}),
        }
        volumes = {
            str(self.home): {"bind": "/github/home", "mode": "rw"},
            str(self.workflow): {"bind": "/github/workflow", "mode": "rw"},
            str(self.commands): {"bind": "/github/file_commands", "mode": "rw"},
            str(self.workspace): {"bind": "/github/workspace", "mode": "rw"},
        }
        container = client.containers.run(
            image,
            entrypoint=entrypoint,
            environment=environment,
            volumes=volumes,
            working_dir="/github/workspace",
            network_mode="host",
            detach=True,
        )
        try:
            code = container.wait(timeout=240)["StatusCode"]
            log = container.logs().decode()
        finally:
            container.remove(force=True)
        return code, log, files


def _values(path: Path) -> dict[str, str]:
    return entrypoint.env_values(path.read_text())


def test_image_runs_like_the_cli(image: Built) -> None:
    command = ["env", "generic", "--no-login", "--format", "json"]
    output = image.client.containers.run(IMAGE, command, remove=True).decode()
    assert json.loads(output)["DOCKER_CONFIG"].startswith("/tmp/")
    # GitHub: "Docker actions must be run by the default Docker user (root)".
    assert image.client.images.get(IMAGE).attrs["Config"]["User"] in ("", "root", "0")


def test_image_reads_a_clone_the_runner_owns(image: Built, tmp_path: Path) -> None:
    # keep.git runs git as root on a workspace the runner's uid 1001 owns.
    clone = tmp_path / "workspace"
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    for path in [clone, *clone.rglob("*")]:
        os.lchown(path, HOSTED_UID, HOSTED_UID)
    volumes = {str(clone): {"bind": "/github/workspace", "mode": "rw"}}
    command = ["-C", "/github/workspace", "rev-parse", "--is-inside-work-tree"]
    output = image.client.containers.run(
        IMAGE, command, entrypoint="git", volumes=volumes, remove=True
    )
    assert output.decode().strip() == "true"


def _owned_by(path: Path, uid: int) -> None:
    for item in [path, *path.rglob("*")]:
        assert item.lstat().st_uid == uid, f"{item} is uid {item.lstat().st_uid}, not {uid}"


@pytest.mark.parametrize("runner_uid", [HOSTED_UID, 0], ids=["hosted-uid-1001", "self-hosted-root"])
def test_action_env_login_cleanup_and_post(
    image: Built, registry: LocalRegistry, tmp_path: Path, runner_uid: int
) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    for day, name in enumerate(["pr-1", "pr-2", "pr-3"]):
        push_image(registry, "octo/app", name, created=old + timedelta(days=day))
    push_image(registry, "octo/app", "main", created=datetime.now(UTC))
    runs = released_action(tmp_path / "release", image.digest)
    runner = Runner(tmp_path / "runner", runner_uid)
    login = {
        "registry": registry.host,
        "username": registry.username,
        "password": registry.password,
    }

    # Step 1: command env -> per-job config on the host, logged in, exported to later steps.
    code, log, files = runner.run(
        image.client, {"command": "env", "login": "true", **login}, image=runs["image"]
    )
    assert code == 0, log
    assert f"::add-mask::{registry.password}" in log
    assert registry.password not in log.replace(f"::add-mask::{registry.password}", "")
    exported = _values(files["GITHUB_ENV"])
    host_config = Path(exported["DOCKER_CONFIG"])
    assert host_config.parent == runner.home, exported
    assert (host_config / "config.json").exists()
    _owned_by(host_config, runner_uid)  # a later step of the runner's user can read it
    assert _values(files["GITHUB_OUTPUT"])["docker-config"] == str(host_config)
    state = _values(files["GITHUB_STATE"])["CIENV_DOCKER_CONFIG"]
    assert state == f"/github/home/{host_config.name}"

    # A later step on the host uses the credentials through DOCKER_CONFIG alone.
    assert skopeo_inspect(registry, "octo/app:main", docker_config=host_config) is not None

    if runner_uid == 0:
        # A root runner: the same files, root's; the cleanup step is the hosted case's.
        _post_step(image, runner, runs, state, host_config)
        return

    # Step 2: command cleanup, with DOCKER_CONFIG as the runner translates it for a container.
    code, log, files = runner.run(
        image.client,
        {
            "command": "cleanup",
            "repo": f"{registry.host}/octo/app",
            "keep-latest": "1",
            "newer-than": "0s",
            "report": "ci-env-report.json",
            "github-token": "",
        },
        env={"DOCKER_CONFIG": state},
        image=runs["image"],
    )
    assert code == 0, log
    outputs = _values(files["GITHUB_OUTPUT"])
    deleted = {f"{registry.host}/octo/app:pr-{number}" for number in (1, 2, 3)}
    assert set(json.loads(outputs.pop("deleted-tags"))) == deleted
    assert json.loads(outputs.pop("failed-tags")) == []
    assert outputs == {"deleted": "3", "kept": "1", "failed": "0", "report": "ci-env-report.json"}
    _owned_by(runner.workspace / "ci-env-report.json", runner_uid)
    report = json.loads((runner.workspace / "ci-env-report.json").read_text())
    assert report["totals"]["deleted"] == 3
    summary = files["GITHUB_STEP_SUMMARY"].read_text()
    assert "octo/app" in summary, summary
    assert "|" in summary, summary
    assert list_tags(registry, "octo/app") == ["main"]

    _post_step(image, runner, runs, state, host_config)


def _post_step(
    image: Built, runner: Runner, runs: dict[str, str], state: str, host_config: Path
) -> None:
    """The post step removes the per-job config at job end."""
    code, log, _ = runner.run(
        image.client,
        {"command": "env"},
        env={"STATE_CIENV_DOCKER_CONFIG": state},
        entrypoint=runs["post-entrypoint"],
        image=runs["image"],
    )
    assert code == 0, log
    assert not host_config.exists()


def test_action_fatal_error_is_an_annotation(image: Built, tmp_path: Path) -> None:
    runner = Runner(tmp_path / "runner")
    code, log, _ = runner.run(
        image.client, {"command": "cleanup", "repo": "127.0.0.1:9/x", "policy": "missing.yml"}
    )
    assert code == 2, log
    assert "::error::" in log
    assert "Traceback" not in log
