"""Bad input, table-driven: each case is a clear `error:` and exit 2 (or, for broken registry
answers, a clean failure), never a traceback, never a deletion.

Inputs run in-process through `ci_env.cli.main` (the real parser, the one `except`) so that 60+
cases stay fast; a traceback would surface here as an uncaught exception and fail the case.
Every case points cleanup at a real seeded registry, and afterwards every tag is still there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci_env.cli import main
from tests.support import faultproxy as fp
from tests.support.harness import write_auth_config
from tests.support.images import DOCKER_MANIFEST, list_tags, push_image
from tests.support.registry import LocalRegistry

TAGS = r"/tags/list"
MANIFESTS = r"/manifests/"


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]  # after `ci-env`; {repo} {host} {tmp} are filled in
    env: tuple[tuple[str, str], ...] = ()
    policy: str | None = None  # written to {tmp}/policy.yml
    code: int | None = 2  # None: any non-zero exit (a clean failure)
    needs: str = ""  # text the error must contain (case-insensitive)


def cleanup(*extra: str, policy: str | None = None, code: int | None = 2, needs: str = "") -> Case:
    return Case(("cleanup", "--repo", "{repo}", *extra), policy=policy, code=code, needs=needs)


def with_policy(text: str, needs: str = "") -> Case:
    return cleanup("--policy", "{tmp}/policy.yml", policy=text, needs=needs)


def repo(text: str) -> Case:
    return Case(("cleanup", "--repo", text))


def env_case(argv: tuple[str, ...], *pairs: tuple[str, str], code: int | None = 2) -> Case:
    return Case(argv, env=pairs, code=code)


CASES: dict[str, Case] = {
    # --- references ---------------------------------------------------------------------------
    "ref empty": repo(""),
    "ref url scheme": repo("https://{host}/app"),
    "ref uppercase path": repo("{host}/App"),
    "ref port too long": repo("registry.example:1234567/app"),
    "ref double slash": repo("{host}//app"),
    "ref bad tag chars": repo("{host}/app:bad!tag"),
    "ref tag not allowed": repo("{host}/app:latest"),
    "ref short digest": repo("{host}/app@sha256:abc"),
    "ref trailing slash": repo("{host}/app/"),
    "ref spaces": repo("{host}/my app"),
    "ref dotdot": repo("{host}/../app"),
    "ref only host": repo("{host}"),
    "ref bad host": repo("bad_host!:5000/app"),
    "ref leading dash component": repo("{host}/-app"),
    # --- policy files -------------------------------------------------------------------------
    "yaml syntax": with_policy("version: 1\nkeep: [latest: 3\n"),
    "yaml tab indent": with_policy("version: 1\nkeep:\n\tlatest: 3\n"),
    "yaml not a mapping": with_policy("- keep\n- delete\n"),
    "yaml empty": with_policy(""),
    "yaml binary": with_policy("\x00\x01\x02garbage"),
    "version missing": with_policy("keep:\n  latest: 3\n"),
    "version 2": with_policy("version: 2\nkeep:\n  latest: 3\n"),
    "unknown top key": with_policy("version: 1\nkeeps:\n  latest: 3\n", needs="keeps"),
    "unknown keep key": with_policy("version: 1\nkeep:\n  lastest: 3\n", needs="lastest"),
    "unknown delete key": with_policy("version: 1\ndelete:\n  older: 3d\n", needs="older"),
    "keep not mapping": with_policy("version: 1\nkeep: 3\n"),
    "negative latest": with_policy("version: 1\nkeep:\n  latest: -1\n"),
    "latest as text": with_policy("version: 1\nkeep:\n  latest: ten\n"),
    "latest float": with_policy("version: 1\nkeep:\n  latest: 2.5\n"),
    "negative semver": with_policy("version: 1\nkeep:\n  semver: -3\n"),
    "bad duration unit": with_policy("version: 1\nkeep:\n  newer_than: 5x\n"),
    "negative duration": with_policy("version: 1\nkeep:\n  newer_than: -2h\n"),
    "duration no unit": with_policy("version: 1\ndelete:\n  older_than: 30\n"),
    "duration empty": with_policy("version: 1\ndelete:\n  older_than: ''\n"),
    "duration words": with_policy("version: 1\ndelete:\n  older_than: a fortnight\n"),
    "bad regex keep": with_policy("version: 1\nkeep:\n  tags: ['(unclosed']\n"),
    "bad regex delete": with_policy("version: 1\ndelete:\n  tags: ['[a-']\n"),
    "tags not a list": with_policy("version: 1\nkeep:\n  tags: 7\n"),
    "tags item a number": with_policy("version: 1\nkeep:\n  tags: [v1, 2.0]\n", needs="keep.tags"),
    "delete tags null": with_policy("version: 1\ndelete:\n  tags:\n", needs="delete.tags"),
    "keep list a bool": with_policy("version: 1\nkeep:\n  list: true\n", needs="keep.list"),
    "untagged bad value": with_policy("version: 1\nuntagged: maybe\n"),
    "git bad count": with_policy("version: 1\nkeep:\n  git: {commits_per_branch: -1}\n"),
    "git unknown key": with_policy("version: 1\nkeep:\n  git: {branches: 3}\n"),
    "keep list missing": with_policy("version: 1\nkeep:\n  list: /nonexistent/keep.txt\n"),
    "policy file missing": cleanup("--policy", "/nonexistent/policy.yml"),
    "policy is a directory": cleanup("--policy", "{tmp}"),
    # --- options ------------------------------------------------------------------------------
    "opt negative latest": cleanup("--keep-latest", "-1"),
    "opt latest text": cleanup("--keep-latest", "many"),
    "opt bad newer-than": cleanup("--keep-newer-than", "3 parsecs"),
    "opt bad older-than": cleanup("--delete-older-than", "-5d"),
    "opt bad keep regex": cleanup("--keep-tag", "["),
    "opt bad delete regex": cleanup("--delete-tag", "(?P<x"),
    "opt shard zero": cleanup("--shard", "0/0"),
    "opt shard out of range": cleanup("--shard", "3/2"),
    "opt shard text": cleanup("--shard", "half"),
    "opt parallel negative": cleanup("--parallel", "-2"),
    "opt untagged bad": cleanup("--untagged", "sometimes"),
    "opt unknown kind": cleanup("--repo-container-registry", "nosuchkind", needs="nosuchkind"),
    "opt timeout text": cleanup("--timeout", "soon"),
    "opt apply missing plan": cleanup("--apply-plan", "/nonexistent/plan.json"),
    "opt apply malformed plan": cleanup("--apply-plan", "{tmp}/policy.yml", policy="{not json"),
    "opt apply and plan-out": cleanup("--apply-plan", "{tmp}/p.json", "--plan-out", "{tmp}/q"),
    "opt keep-list missing": cleanup("--keep-list", "/nonexistent/list.txt"),
    "opt unknown flag": cleanup("--delete-everything"),
    # --- issue 16: inputs that crashed with a traceback or ran a real cleanup -------------------
    "policy not utf-8": with_policy("version: 1\nkeep:\n  latest: \udcff\n", needs="UTF-8"),
    "keep list not utf-8": cleanup("--keep-list", "{tmp}/policy.yml", policy="v1\n\udcfe\n"),
    "latest superscript two": with_policy("version: 1\nkeep:\n  latest: \u00b2\n"),
    "opt latest superscript": cleanup("--keep-latest", "\u00b2"),
    "opt shard superscript": cleanup("--shard", "\u00b2/4"),
    "opt timeout nan": cleanup("--timeout", "nan", needs="--timeout"),
    "opt timeout inf": cleanup("--timeout", "inf"),
    "env timeout nan": env_case(("cleanup", "--repo", "{repo}"), ("CIENV_TIMEOUT", "nan")),
    "opt max attempts huge": cleanup("--max-retry-seconds", "1e999"),
    "opt newer-than overflow": cleanup("--keep-newer-than", "99999999999w", needs="days"),
    "opt older-than overflow": cleanup("--delete-older-than", "999999999d", needs="days"),
    "policy duration overflow": with_policy("version: 1\ndelete:\n  older_than: 999999999d\n"),
    "yaml nested 5000 deep": with_policy("version: 1\nkeep: " + "[" * 5000 + "]" * 5000 + "\n"),
    "plan nested deep": cleanup("--apply-plan", "{tmp}/policy.yml", policy="[" * 100_000),
    "regex backreference": cleanup("--delete-tag", r"(a)\1", needs="RE2"),
    "regex lookahead in policy": with_policy("version: 1\nkeep:\n  tags: ['(?=v)v.*']\n"),
    "env dry run maybe": env_case(
        ("cleanup", "--repo", "{repo}", "--keep-latest", "0", "--keep-newer-than", "0s"),
        ("CIENV_DRY_RUN", "maybe"),
    ),
    "env WERF dry run typo": env_case(
        ("cleanup", "--repo", "{repo}", "--keep-latest", "0", "--keep-newer-than", "0s"),
        ("WERF_DRY_RUN", "ture"),
    ),
    # --- environment variables ----------------------------------------------------------------
    "env CIENV_REPO bad": env_case(("cleanup",), ("CIENV_REPO", "http://nope")),
    "env no repo at all": env_case(("cleanup",)),
    "env CIENV_POLICY missing": env_case(
        ("cleanup", "--repo", "{repo}"), ("CIENV_POLICY", "/nonexistent.yml")
    ),
    "env bad registry kind": env_case(
        ("cleanup", "--repo", "{repo}"), ("CIENV_REPO_CONTAINER_REGISTRY", "floppy")
    ),
    "env WERF bad kind": env_case(
        ("cleanup", "--repo", "{repo}"), ("WERF_REPO_CONTAINER_REGISTRY", "floppy")
    ),
    "env keep list missing": env_case(
        ("cleanup", "--repo", "{repo}"), ("CIENV_KEEP_LIST", "/nonexistent/list")
    ),
    "env DOCKER_AUTH_CONFIG not json": env_case(
        ("env", "--use-docker-auth-config", "--no-login"), ("DOCKER_AUTH_CONFIG", "{auths:")
    ),
    "env DOCKER_AUTH_CONFIG a list": env_case(
        ("env", "--use-docker-auth-config", "--no-login"), ("DOCKER_AUTH_CONFIG", "[1, 2]")
    ),
    "env DOCKER_AUTH_CONFIG unset": env_case(("env", "--use-docker-auth-config", "--no-login")),
    "env incomplete login vars": env_case(
        ("env", "generic"), ("CIENV_REGISTRY", "{host}"), ("CIENV_REGISTRY_USERNAME", "ci")
    ),
    "env login without credentials": env_case(("login", "{host}")),
    "env login username without stdin": env_case(("login", "{host}", "-u", "ci")),
    "env login not a registry": env_case(("login", "https://")),
    "env format github no GITHUB_ENV": env_case(("env", "--no-login", "--format", "github")),
}

# Broken registry answers: the proxy replaces the registry's answer; the run must fail cleanly
# (exit 1, or 2 where it is the user's to fix) and delete nothing.
# 200 unknown tags take the path 2,000 did (one page, each tag's manifest missing) in a tenth
# of the time; tests/reliability/test_scale.py is the one test of size.
_BIG = json.dumps({"name": "app", "tags": [f"t{i}" for i in range(200)]}).encode()
_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "layers": []}).encode()
ANSWERS: dict[str, list[fp.Fault]] = {
    "tags malformed json": [fp.status(200, times=None, path=TAGS, body=b'{"tags": [')],
    "tags wrong type": [fp.status(200, times=None, path=TAGS, body=b'{"tags": 5}')],
    "tags a string": [fp.status(200, times=None, path=TAGS, body=b'{"tags": "v0v1"}')],
    "tags page a JSON list": [fp.status(200, times=None, path=TAGS, body=b'["v0", "v1"]')],
    "index manifests a number": [
        fp.status(
            200,
            times=None,
            method="GET",
            path=MANIFESTS,
            headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
            body=b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",'
            b' "manifests": 5}',
        ),
    ],
    "tags html page": [
        fp.status(
            200, times=None, path=TAGS, headers={"Content-Type": "text/html"}, body=b"<html>hi"
        )
    ],
    "tags huge page of unknown tags": [fp.status(200, times=None, path=TAGS, body=_BIG)],
    "manifest malformed json": [
        fp.status(200, times=None, method="GET", path=MANIFESTS, body=b"{]"),
    ],
    "manifest wrong content type": [
        fp.status(
            200,
            times=None,
            method="GET",
            path=MANIFESTS,
            headers={"Content-Type": "text/plain"},
            body=b"hello",
        ),
    ],
    "digest does not match body": [
        fp.status(
            200,
            times=None,
            path=MANIFESTS,
            headers={
                "Content-Type": DOCKER_MANIFEST,
                "Docker-Content-Digest": "sha256:" + "0" * 64,
            },
            body=_MANIFEST,
        ),
    ],
    "tags list 500 forever": [fp.status(500, times=None, path=TAGS)],
}


@pytest.fixture(scope="module")
def seeded() -> Iterator[LocalRegistry]:
    reg = LocalRegistry("htpasswd").start()
    try:
        for i in range(3):
            push_image(reg, "bad/app", f"v{i}", via="http")
        yield reg
    finally:
        reg.close()


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _run(
    argv: list[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    for name in list(__import__("os").environ):
        if name.startswith(("CIENV_", "WERF_", "GITHUB_", "GITLAB_", "CI_", "DOCKER_")):
            monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code if isinstance(stop.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(
    name: str,
    seeded: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    config = write_auth_config(tmp_path / "docker", {seeded.host: (seeded.username, "x" * 8)})
    values = {"repo": f"{seeded.host}/bad/app", "host": seeded.host, "tmp": str(tmp_path)}
    if case.policy is not None:
        # surrogateescape: a case may hold bytes that are not UTF-8 (`\udcff` is byte 0xff)
        (tmp_path / "policy.yml").write_bytes(case.policy.encode("utf-8", "surrogateescape"))
    env = {"DOCKER_CONFIG": str(config), "HOME": str(tmp_path), "CIENV_TMP_DIR": str(tmp_path)}
    env.update({k: _fill(v, values) for k, v in case.env})
    argv = [_fill(a, values) for a in case.argv]
    code, output = _run(argv, env, monkeypatch, capsys)
    assert "Traceback" not in output, output
    if case.code is None:
        assert code != 0, output
    else:
        assert code == case.code, output
    assert "error" in output.lower(), output
    assert case.needs.lower() in output.lower(), output
    assert list_tags(seeded, "bad/app") == ["v0", "v1", "v2"]


@pytest.mark.parametrize("name", list(ANSWERS))
def test_bad_registry_answer(
    name: str,
    seeded: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fp.FaultProxy(seeded.url, lifetime=120) as proxy:
        proxy.add(*ANSWERS[name])
        auth = {proxy.host: (seeded.username, seeded.password)}
        config = write_auth_config(tmp_path / "docker", auth)
        env = {"DOCKER_CONFIG": str(config), "HOME": str(tmp_path)}
        argv = [
            "cleanup", "--repo", f"{proxy.host}/bad/app", "--keep-latest", "0",
            "--keep-newer-than", "0s", "--timeout", "2", "--max-attempts", "2",
            "--max-retry-seconds", "3",
        ]  # fmt: skip
        code, output = _run(argv, env, monkeypatch, capsys)
    assert "Traceback" not in output, output
    # The policy would delete every tag: a clean failure (1/2), or a run that keeps what it
    # cannot read (0), is fine; a deletion is not.
    assert code in (0, 1, 2), output
    assert proxy.count("DELETE") == 0, output
    assert list_tags(seeded, "bad/app") == ["v0", "v1", "v2"]


def test_table_is_big_enough() -> None:
    assert len(CASES) + len(ANSWERS) >= 60
