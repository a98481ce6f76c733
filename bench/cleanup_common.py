"""What both cases of `cleanup_bench.py` share: credentials, ci-env and skopeo runs, checks."""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import images  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

# The hand-written name policy: `skopeo delete` each `docker://` reference given.
DELETE_LOOP = (
    'for r in "$@"; do skopeo delete --tls-verify=false --authfile "$AUTH" "$r" || exit 1; done'
)
# The hand-written age policy: read each tag's `Created` (without listing the tags each time,
# as plain `skopeo inspect` does), delete the ones before $1 (epoch seconds).
AGE_LOOP = r"""cutoff=$1; shift
for r in "$@"; do
  c=$(skopeo inspect --no-tags --tls-verify=false --authfile "$AUTH" \
    --format '{{.Created.Unix}}' "$r") || exit 1
  if [ "$c" -lt "$cutoff" ]; then
    skopeo delete --tls-verify=false --authfile "$AUTH" "$r" || exit 1
  fi
done"""


@dataclass
class Cli:
    """What this checkout's `ci-env cleanup --help` offers (other branches change it)."""

    cache_dir: bool
    parallel: int


def cli_features() -> Cli:
    text = cienv("cleanup", "--help").stdout
    found = re.search(r"--parallel N\s[^(]*\((?:default:? )?(\d+)\)", text)
    if found is None:
        print("could not read --parallel's default from `ci-env cleanup --help`: taking 8")
    return Cli(cache_dir="--cache-dir" in text, parallel=int(found.group(1)) if found else 8)


def compile_bytecode() -> None:
    """Byte-compile this checkout's `ci_env`, as `pip install` does for the installed package:
    where PYTHONDONTWRITEBYTECODE is set (CI images set it), every run would otherwise compile
    ~75 modules again, ~0.1 s of start-up a user of the package never pays."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "compileall", "-q", str(ROOT / "ci_env")]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def cienv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    cmd = [sys.executable, "-m", "ci_env", *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, check=False)


def docker_config(directory: Path, reg: LocalRegistry, host: str) -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps({"auths": {host: {"auth": reg.auth_entry()}}})
    )
    (directory / "config.json").chmod(0o600)
    return directory


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cleanup(
    host: str, repo: str, config: Path, options: list[str], env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the ci-env process) of one `ci-env cleanup`."""
    args = ["cleanup", "--repo", f"{host}/{repo}", *options]
    cpu = children_cpu()
    start = time.perf_counter()
    done = cienv(*args, env={"DOCKER_CONFIG": str(config), **(env or {})})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"ci-env cleanup failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return elapsed, children_cpu() - cpu


def run_loop(script: str, config: Path, args: list[str]) -> float:
    env = dict(os.environ, AUTH=str(config / "config.json"))
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script, "sh", *args], env=env, check=True)
    return time.perf_counter() - start


def check_left(reg: LocalRegistry, doomed: dict[str, list[str]], total: int) -> None:
    left = [tag for repo in doomed for tag in images.list_tags(reg, repo)]
    deleted = sum(len(tags) for tags in doomed.values())
    assert len(left) == total - deleted, len(left)
    assert not any(tag.startswith("pr-") for tag in left)


def startup() -> dict[str, float]:
    """Median wall seconds of 5 runs each of `ci-env --version` and `ci-env env --no-login`."""
    quiet = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "CI": ""}
    times: dict[str, list[float]] = {"ci-env --version": [], "ci-env env --no-login": []}
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp, "docker")
        empty.mkdir(mode=0o700)
        runs = {
            "ci-env --version": ["--version"],
            "ci-env env --no-login": ["env", "--no-login", "--tmp-dir", tmp],
        }
        for _ in range(5):
            for name, args in runs.items():
                start = time.perf_counter()
                done = cienv(*args, env={**quiet, "DOCKER_CONFIG": str(empty)})
                times[name].append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed: {done.stderr}")
    return {name: statistics.median(values) for name, values in times.items()}
