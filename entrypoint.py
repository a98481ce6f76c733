#!/usr/bin/env python3
"""Entry point of the ci-env image and of the GitHub container Action.

With arguments (`docker run IMAGE cleanup --repo ...`) it is the CLI itself. Without
arguments it is the Action: each `INPUT_*` variable (hyphens kept, e.g. `INPUT_DRY-RUN`) maps
to a CLI argument, the CLI runs, and its results map to the runner's file commands. All the work
(login, masking, job summary, reports) is the CLI's; this file only translates.

Two translations the CLI cannot know about, both fixed by the runner's container-action layout
(actions/runner ContainerActionHandler.cs): the host's `$RUNNER_TEMP/_github_home` is mounted
at `/github/home`, so the per-job config is created there and its *host* path is what later
steps get; and secrets arrive as inputs, so they travel by environment or stdin, never argv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping

import yaml

CLI = [sys.executable, "-m", "ci_env"]
CONTAINER_HOME = "/github/home"
STATE_KEY = "CIENV_DOCKER_CONFIG"  # read back by post_entrypoint.py as STATE_CIENV_DOCKER_CONFIG
COMMANDS = ("env", "login", "cleanup")

# Action input -> CLI option, per command. "flag" inputs add the option when true; "list"
# inputs (one value per line) repeat it; the rest pass one value.
VALUE, FLAG, LIST = "value", "flag", "list"
OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "env": {
        "docker-config": ("--docker-config", VALUE),
        "tmp-dir": ("--tmp-dir", VALUE),
        "insecure-registry": ("--insecure-registry", LIST),
    },
    "login": {
        "username": ("--username", VALUE),
        "docker-config": ("--docker-config", VALUE),
        "insecure-registry": ("--insecure-registry", LIST),
    },
    "cleanup": {
        "repo": ("--repo", LIST),
        "policy": ("--policy", VALUE),
        "dry-run": ("--dry-run", FLAG),
        "keep-latest": ("--keep-latest", VALUE),
        "newer-than": ("--keep-newer-than", VALUE),
        "older-than": ("--delete-older-than", VALUE),
        "keep-tags": ("--keep-tag", LIST),
        "delete-tags": ("--delete-tag", LIST),
        "keep-list": ("--keep-list", VALUE),
        "keep-semver": ("--keep-semver", VALUE),
        "keep-git": ("--keep-git", FLAG),
        "untagged": ("--untagged", VALUE),
        "on-broken": ("--on-broken", VALUE),
        "werf-config": ("--werf-config", VALUE),
        "shard": ("--shard", VALUE),
        "parallel": ("--parallel", VALUE),
        "report": ("--report-json", VALUE),
        "cache-dir": ("--cache-dir", VALUE),
        "insecure-registry": ("--insecure-registry", LIST),
    },
}
# Inputs that are secrets: masked first, passed as these variables, never as arguments.
SECRET_INPUTS = {"password": "CIENV_REGISTRY_PASSWORD", "github-token": "GITHUB_TOKEN"}


def inp(env: Mapping[str, str], name: str) -> str:
    # The runner upper-cases input names and turns spaces (not hyphens) into underscores.
    return env.get("INPUT_" + name.replace(" ", "_").upper(), "").strip()


def truthy(value: str, name: str) -> bool:
    """A boolean input; anything but true/false (1/0, yes/no, on/off) stops with exit 2, as
    `dry-run: maybe` must not mean a real cleanup."""
    if value.lower() in {"1", "true", "yes", "on", "y"}:
        return True
    if value.lower() in {"", "0", "false", "no", "off", "n"}:
        return False
    print(f"::error::input '{name}' must be true or false, not {value!r}", file=sys.stderr)
    raise SystemExit(2)


def mapped_options(command: str, env: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for name, (option, kind) in OPTIONS[command].items():
        value = inp(env, name)
        if not value:
            continue
        if kind == FLAG:
            args += [option] if truthy(value, name) else []
        elif kind == LIST:
            for item in (line.strip() for line in value.splitlines()):
                args += [option, item] if item else []
        else:
            args += [option, value]
    return args


def cli_args(env: Mapping[str, str], in_container: bool) -> tuple[list[str], str | None]:
    """The CLI argv for the Action's inputs, and what to feed its stdin (a password)."""
    command = inp(env, "command") or "env"
    if command not in COMMANDS:
        raise SystemExit(f"::error::input 'command' must be one of {', '.join(COMMANDS)}")
    args = ["--verbose"] if truthy(inp(env, "verbose"), "verbose") else []
    args.append(command)
    stdin = None
    if command == "env":
        args += ["github", "--format", "github"]
        if inp(env, "login") and not truthy(inp(env, "login"), "login"):
            args.append("--no-login")
        if in_container and not inp(env, "tmp-dir"):
            args += ["--tmp-dir", CONTAINER_HOME]
    elif command == "login":
        registry = inp(env, "registry")
        args += [registry] if registry else []
        if inp(env, "username") and inp(env, "password"):
            args.append("--password-stdin")
            stdin = inp(env, "password")
    args += mapped_options(command, env)
    # Not "args": the runner passes an input of that name as the container's arguments.
    args += shlex.split(inp(env, "extra-args"))
    return args, stdin


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The CLI's environment: secrets and the `env` command's registry login as variables."""
    out = dict(env)
    for name, variable in SECRET_INPUTS.items():
        if inp(env, name) and not out.get(variable):
            out[variable] = inp(env, name)
    if inp(env, "command") in ("", "env"):
        for name, variable in (
            ("registry", "CIENV_REGISTRY"),
            ("username", "CIENV_REGISTRY_USERNAME"),
        ):
            if inp(env, name):
                out[variable] = inp(env, name)
    if inp(env, "command") == "login":
        out.pop("CIENV_REGISTRY_PASSWORD", None)  # login reads it from stdin
    return out


def registry_auth(env: Mapping[str, str]) -> list[dict[str, str]]:
    """The `registry-auth` input: a YAML list of {registry, username, password} (the form of
    docker/login-action's `registry-auth`), one login each after the `env` command's own."""
    text = inp(env, "registry-auth")
    if not text:
        return []
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError:
        entries = None
    keys = ("registry", "username", "password")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and all(isinstance(e.get(k), str) and e[k] for k in keys)
        for e in entries
    ):
        raise SystemExit(
            "::error::input 'registry-auth' must be a YAML list of "
            "{registry, username, password} entries"
        )
    return [{key: str(entry[key]) for key in keys} for entry in entries]


def mask(env: Mapping[str, str]) -> None:
    values = [line for name in SECRET_INPUTS for line in inp(env, name).splitlines()]
    # Each password of registry-auth, found line by line so that even YAML this file cannot
    # parse is masked before anything is printed.
    for line in inp(env, "registry-auth").splitlines():
        key, _, value = line.strip().lstrip("- ").partition(":")
        if key.strip() == "password":
            values.append(value.strip().strip("'\""))
    for value in values:
        if value.strip():
            print(f"::add-mask::{value.strip()}", flush=True)


def run_cli(args: list[str], env: Mapping[str, str], stdin: str | None) -> int:
    """Run the CLI; its fatal `error:` lines become `::error::` annotations (already redacted)."""
    process = subprocess.Popen(
        CLI + args,
        env=dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if stdin is not None and process.stdin:
        process.stdin.write(stdin + "\n")
        process.stdin.close()
    assert process.stderr is not None
    annotated: set[str] = set()
    for line in process.stderr:
        sys.stderr.write(annotate(line, annotated))
        sys.stderr.flush()
    return process.wait()


# `error: ...` from the CLI, `ci-env cleanup: error: ...` from argparse; `warning: ...`.
FATAL = re.compile(r"^(?:ci-env[\w -]*: )?error: ")
WARNING = re.compile(r"^warning: ")


def annotate(line: str, annotated: set[str] | None = None) -> str:
    """A CLI `error:`/`warning:` line as an annotation, once: a command that annotated an
    error itself (`::error::error: ...`) also prints the plain line, which stays plain."""
    seen = annotated if annotated is not None else set()
    if line.startswith("::error::"):
        seen.add(line.removeprefix("::error::").removeprefix("error: ").strip())
        return line
    if match := FATAL.match(line):
        message = line[match.end() :]
        return line if message.strip() in seen else f"::error::{message}"
    if match := WARNING.match(line):
        return f"::warning::{line[match.end() :]}"
    return line


def host_path(text: str, runner_temp: str) -> str:
    """Container paths under /github/home -> the host paths the runner mounted there."""
    host = runner_temp.rstrip("/") + "/_github_home"
    return re.sub(r"(?m)(^|=)" + re.escape(CONTAINER_HOME) + r"(?=/|$)", r"\g<1>" + host, text)


def append(path: str | None, lines: Iterable[str]) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.writelines(f"{line}\n" for line in lines)


def env_values(text: str) -> dict[str, str]:
    """Entries of a $GITHUB_ENV-style file: `K=V` lines and `K<<DELIM` ... `DELIM` blocks."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for item in lines:
                if item == delimiter:
                    break
                block.append(item)
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def hand_over(path: str, mount: str) -> None:
    """Give what the container created under a runner mount to the owner of that mount.

    The container runs as root (GitHub's rule for Docker actions); later steps run as the
    runner's user (uid 1001 on GitHub-hosted runners, anything on self-hosted ones), who
    could not read a root-owned 0700 config dir or rewrite a root-owned report.
    """
    if os.geteuid() != 0 or not os.path.lexists(path):
        return
    owner = os.stat(mount)
    if owner.st_uid == 0:
        return  # a root runner: nothing to change
    os.lchown(path, owner.st_uid, owner.st_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), owner.st_uid, owner.st_gid)


def login_each(entries: list[dict[str, str]], env: dict[str, str]) -> int:
    """`ci-env login` into the per-job config for each registry-auth entry (password on stdin)."""
    for entry in entries:
        args = ["login", entry["registry"], "--username", entry["username"], "--password-stdin"]
        for host in inp(env, "insecure-registry").split():
            args += ["--insecure-registry", host]
        code = run_cli(args, env, entry["password"])
        if code != 0:
            return code
    return 0


def run_env(args: list[str], env: dict[str, str], stdin: str | None, in_container: bool) -> int:
    """`env` writes to a private $GITHUB_ENV first, so its paths can be made host paths."""
    real = env.get("GITHUB_ENV")
    with tempfile.NamedTemporaryFile("r", suffix=".env", encoding="utf-8") as private:
        code = run_cli(args, {**env, "GITHUB_ENV": private.name}, stdin)
        written = private.read()
    exported = host_path(written, env.get("RUNNER_TEMP", "")) if in_container else written
    append(real, exported.splitlines())
    container_dir = env_values(written).get("DOCKER_CONFIG")
    if container_dir and code == 0:
        code = login_each(registry_auth(env), {**env, "DOCKER_CONFIG": container_dir})
    if container_dir and in_container:
        hand_over(container_dir, CONTAINER_HOME)
    if container_dir:
        append(env.get("GITHUB_STATE"), [f"{STATE_KEY}={container_dir}"])
        host_dir = env_values(exported)["DOCKER_CONFIG"]
        append(env.get("GITHUB_OUTPUT"), [f"docker-config={host_dir}"])
    return code


def report_counts(report: Mapping[str, object]) -> dict[str, int]:
    """Outputs from the JSON report's totals (README: Reports). `deleted` counts untagged tags
    too, and in a dry run what would be deleted (a run has only one of the two sets)."""
    totals = report.get("totals")
    count = totals if isinstance(totals, dict) else {}

    def total(*actions: str) -> int:
        return sum(int(count.get(action, 0)) for action in actions)

    return {
        "deleted": total(*DELETED),
        "kept": total("kept"),
        "failed": total("failed"),
    }


DELETED = ("deleted", "untagged", "would-delete", "would-untag")


def report_tags(report: Mapping[str, object]) -> dict[str, str]:
    """`deleted-tags` and `failed-tags`: JSON lists of `repository:tag` from the report."""
    repositories = report.get("repositories")
    items = [
        item
        for repo in (repositories if isinstance(repositories, list) else [])
        if isinstance(repo, dict)
        for item in repo.get("items", [])
        if isinstance(item, dict)
    ]

    def tags(*actions: str) -> str:
        names = [f"{i.get('repo')}:{i.get('tag')}" for i in items if i.get("action") in actions]
        return json.dumps(names, separators=(",", ":"))

    return {"deleted-tags": tags(*DELETED), "failed-tags": tags("failed")}


def run_cleanup(args: list[str], env: dict[str, str], stdin: str | None) -> int:
    if "--report-json" not in args:
        args = [*args, "--report-json", "ci-env-report.json"]
    report = args[args.index("--report-json") + 1]
    code = run_cli(args, env, stdin)
    hand_over(report, os.path.dirname(os.path.abspath(report)))
    if "--cache-dir" in args:  # actions/cache saves it as the runner's user, after this step
        cache = args[args.index("--cache-dir") + 1]
        hand_over(cache, os.path.dirname(os.path.abspath(cache)))
    try:
        with open(report, encoding="utf-8") as file:
            data = json.load(file)
        data = data if isinstance(data, dict) else {}
        outputs: dict[str, object] = {**report_counts(data), **report_tags(data)}
    except (OSError, ValueError):
        return code  # the CLI already said why there is no report
    lines = [f"{key}={value}" for key, value in outputs.items()] + [f"report={report}"]
    append(env.get("GITHUB_OUTPUT"), lines)
    return code


def action(env: dict[str, str]) -> int:
    mask(env)
    in_container = env.get("HOME") == CONTAINER_HOME and os.path.isdir(CONTAINER_HOME)
    args, stdin = cli_args(env, in_container)
    cenv = child_env(env)
    command = args[1] if args[0] == "--verbose" else args[0]
    if command == "env":
        return run_env(args, cenv, stdin, in_container)
    if command == "cleanup":
        return run_cleanup(args, cenv, stdin)
    return run_cli(args, cenv, stdin)


def main(argv: list[str]) -> int:
    if argv or "INPUT_COMMAND" not in os.environ:
        # Plain CLI: `docker run IMAGE cleanup --repo ...`; no arguments at all shows the help.
        os.execv(CLI[0], CLI + (argv or ["--help"]))
    return action(dict(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
