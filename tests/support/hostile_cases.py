"""Hostile registries and token services (issue 16), as cases shared by `test_hostile.py` and
`bench/reliability_report.py`.

Each case starts loopback servers playing the hostile part (`tests.support.hostile`), runs the
real CLI against them, and returns an `Outcome`: whether the run hung (went past its bound),
leaked (a credential reached another origin or a secret was printed or reported, a workflow
command got through) or crashed (a traceback, or no clean exit code). All must be zero.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.harness import TRACEBACK, Result, base_env, run_cli, write_auth_config
from tests.support.hostile import Answer, Hostile, Request, basic_challenge
from tests.support.images import DOCKER_MANIFEST, push_image
from tests.support.registry import LocalRegistry
from tests.support.tls import loopback_name, self_signed

USER = "ci"
PASSWORD = "hostile-Secret-0123"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRET_FORMS = (PASSWORD, BASIC, base64.b64encode(PASSWORD.encode()).decode()[:16])
EMPTY_TAGS = b'{"name": "app", "tags": []}'
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


@dataclass
class Outcome:
    name: str
    result: Result | None = None
    hung: bool = False
    leaks: list[str] = field(default_factory=list)
    crashed: bool = False
    requests: int = 0
    skipped: str = ""  # why the case could not run on this machine

    @property
    def ok(self) -> bool:
        return not (self.hung or self.leaks or self.crashed)

    def describe(self) -> str:
        run = self.result.describe() if self.result else ""
        return f"{self.name}: hung={self.hung} leaks={self.leaks} crashed={self.crashed}\n{run}"


def _env(tmp: Path, host: str, **extra: str) -> dict[str, str]:
    config = write_auth_config(tmp / "docker", {host: (USER, PASSWORD)})
    return base_env(tmp, DOCKER_CONFIG=str(config), **extra)


def _cleanup(host: str, *extra: str) -> list[str]:
    return [
        "cleanup", "--repo", f"{host}/app", "--keep-newer-than", "0s", "--keep-latest", "0",
        "--max-attempts", "1", *extra,
    ]  # fmt: skip


def _check(outcome: Outcome, result: Result, *, bound: float, codes: tuple[int, ...]) -> Outcome:
    outcome.result = result
    outcome.hung = result.seconds > bound
    outcome.crashed |= TRACEBACK in result.output or result.code not in codes
    outcome.leaks += [f"printed {form[:6]}..." for form in SECRET_FORMS if form in result.output]
    return outcome


def _leaked_to(server: Hostile) -> list[str]:
    return [
        f"Authorization sent to {server.host}{r.path}" for r in server.saw_header("Authorization")
    ]


def _report_leaks(path: Path) -> list[str]:
    if not path.exists():
        return ["no --report-json written"]
    text = path.read_text()
    return [f"report holds {form[:6]}..." for form in SECRET_FORMS if form in text]


def _registry(tags: Callable[[Request], Answer]) -> Callable[[Request], Answer]:
    """A registry wanting Basic credentials whose tag listing is `tags`; nothing else exists."""

    def respond(request: Request) -> Answer:
        challenge = basic_challenge(request)
        if challenge is not None:
            return challenge
        if "/tags/list" in request.path:
            return tags(request)
        if request.path.rstrip("/") == "/v2":
            return Answer(200, body=b"{}")
        return Answer(404, body=b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "no"}]}')

    return respond


# --- 1: credentials go only to the registry's origin -------------------------------------------


def link_to_another_host(tmp: Path) -> Outcome:
    outcome = Outcome("Link: next page on another host")
    with Hostile(lambda r: Answer(200, body=EMPTY_TAGS)) as other:
        link = f'<{other.url}/v2/app/tags/list?last=v1&n=1000>; rel="next"'
        page = Answer(200, {"Link": link}, b'{"name": "app", "tags": ["v1"]}')
        with Hostile(_registry(lambda r: page)) as evil:
            result = run_cli(_cleanup(evil.host, "--dry-run"), _env(tmp, evil.host), timeout=60)
            outcome.requests = len(evil.requests) + len(other.requests)
        outcome.leaks += _leaked_to(other)
        if not other.requests:
            outcome.leaks.append("the next page was never asked for: nothing was tested")
    return _check(outcome, result, bound=30, codes=(0, 1))


def https_link_to_plain_http(tmp: Path) -> Outcome:
    """An https registry (a non-loopback-looking name, its certificate trusted) whose next page
    is on plain http: the downgrade gets no credentials."""
    outcome = Outcome("https registry's Link to plain http")
    name = loopback_name()
    if name is None:  # the same-origin unit test still covers the rule
        outcome.skipped = "no non-loopback-looking host name resolves to 127.0.0.1 here"
        return outcome
    cert = self_signed(tmp, name)
    with Hostile(lambda r: Answer(200, body=EMPTY_TAGS), name=name) as plain:
        link = f'<{plain.url}/v2/app/tags/list?last=v1&n=1000>; rel="next"'
        page = Answer(200, {"Link": link}, b'{"name": "app", "tags": ["v1"]}')
        with Hostile(_registry(lambda r: page), tls=cert, name=name) as evil:
            env = _env(tmp, evil.host, REQUESTS_CA_BUNDLE=str(cert[0]), NO_PROXY=name)
            result = run_cli(_cleanup(evil.host, "--dry-run"), env, timeout=60)
            outcome.requests = len(evil.requests) + len(plain.requests)
        outcome.leaks += _leaked_to(plain)
        if not evil.saw_header("Authorization") or not plain.requests:
            outcome.leaks.append("the https registry or its plain-http page was not reached")
    return _check(outcome, result, bound=30, codes=(0, 1))


# --- 3: secrets echoed in an error body --------------------------------------------------------


def error_echoes_authorization(tmp: Path) -> Outcome:
    outcome = Outcome("500 body echoes Authorization")

    def echo(request: Request) -> Answer:
        text = f"bad request: Authorization: {request.header('Authorization')}; pw {PASSWORD}"
        body = json.dumps({"errors": [{"code": "UNKNOWN", "message": text}]}).encode()
        return Answer(500, {"Content-Type": "application/json"}, body)

    report = tmp / "report.json"
    with Hostile(_registry(echo)) as evil:
        args = _cleanup(evil.host, "--report-json", str(report))
        result = run_cli(args, _env(tmp, evil.host), timeout=60)
        outcome.requests = len(evil.requests)
    outcome.leaks += _report_leaks(report)
    if "***" not in result.output:
        outcome.leaks.append("the echoed error was not shown (masked) at all")
    return _check(outcome, result, bound=30, codes=(1,))


# --- 8: workflow commands in registry text -----------------------------------------------------


def runner_commands(output: str) -> list[str]:
    """The workflow commands GitHub's runner would run from `output`: lines starting with `::`
    after leading whitespace, split at `\\n` and lone `\\r`, minus `::stop-commands::` blocks."""
    token = None
    found = []
    for line in re.split(r"\r\n|\r|\n", output):
        text = line.lstrip()
        if not text.startswith("::"):
            continue
        if token is not None:
            token = None if text == f"::{token}::" else token
            continue
        if text.startswith("::stop-commands::"):
            token = text.removeprefix("::stop-commands::")
            continue
        found.append(text)
    return found


def workflow_commands_in_errors(tmp: Path) -> Outcome:
    outcome = Outcome("registry text holds ::workflow commands")
    text = "boom\n::add-mask::hostile-a\r::set-output name=x::hostile-b\n  ::warning::hostile-c"
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": text}]}).encode()
    with Hostile(_registry(lambda r: Answer(500, body=body))) as evil:
        env = _env(tmp, evil.host, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(tmp / "s.md"))
        result = run_cli(["-v", *_cleanup(evil.host)], env, timeout=60)
        outcome.requests = len(evil.requests)
    for stream in (result.stdout, result.stderr):
        outcome.leaks += [f"runner runs {c!r}" for c in runner_commands(stream) if "hostile" in c]
    if "hostile-a" not in result.output:
        outcome.leaks.append("the registry's message was not shown at all")
    return _check(outcome, result, bound=30, codes=(1,))


def _tiny_registry(tags: list[str]) -> Callable[[Request], Answer]:
    """A registry (Basic auth) holding one layerless image under every one of `tags`."""
    config = json.dumps({"created": "2020-01-01T00:00:00Z", "os": "linux"}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [],
        }
    ).encode()
    headers = {
        "Content-Type": DOCKER_MANIFEST,
        "Docker-Content-Digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
    }
    listing = json.dumps({"name": "app", "tags": tags}).encode()

    def respond(request: Request) -> Answer:
        if "/tags/list" in request.path:
            return Answer(200, {"Content-Type": "application/json"}, listing)
        if "/manifests/" in request.path:
            return Answer(200, headers, b"" if request.method == "HEAD" else manifest)
        if config_digest in request.path:
            return Answer(200, {"Content-Type": "application/octet-stream"}, config)
        return Answer(404, body=b"{}")

    return lambda request: basic_challenge(request) or respond(request)


def workflow_commands_in_tags(tmp: Path) -> Outcome:
    outcome = Outcome("tag names hold ::workflow commands")
    tags = ["v1\n::add-mask::hostile-a", "v2\r  ::set-env name=X::hostile-b"]
    with Hostile(_tiny_registry(tags)) as evil:
        env = _env(tmp, evil.host, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(tmp / "s.md"))
        result = run_cli(_cleanup(evil.host, "--dry-run"), env, timeout=60)
        outcome.requests = len(evil.requests)
    for stream in (result.stdout, result.stderr):
        outcome.leaks += [f"runner runs {c!r}" for c in runner_commands(stream) if "hostile" in c]
    if "hostile-a" not in result.stdout:
        outcome.leaks.append("the tags were not reported at all")
    return _check(outcome, result, bound=30, codes=(0,))


# --- 9, 11: slow and huge bodies ---------------------------------------------------------------


def trickling_body(tmp: Path) -> Outcome:
    outcome = Outcome("tags body trickles a byte every 0.4 s")
    pieces = [b'{"tags": [', *([b" "] * 60), b"]}"]  # 25 s in all
    with Hostile(_registry(lambda r: Answer(200, pieces=pieces, pause=0.4))) as evil:
        args = _cleanup(evil.host, "--dry-run", "--timeout", "1")
        result = run_cli(args, _env(tmp, evil.host), timeout=60)
        outcome.requests = len(evil.requests)
    return _check(outcome, result, bound=10, codes=(1,))  # --timeout 1, plus start-up


def trickling_headers(tmp: Path) -> Outcome:
    outcome = Outcome("status line and headers trickle a byte every 0.4 s")
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Slow: " + b"y" * 20 + b"\r\n\r\n{}"
    pieces = [answer[i : i + 1] for i in range(len(answer))]  # 28 s in all
    with Hostile(_registry(lambda r: Answer(pieces=pieces, pause=0.4, raw=True))) as evil:
        args = _cleanup(evil.host, "--dry-run", "--timeout", "1")
        result = run_cli(args, _env(tmp, evil.host), timeout=60)
        outcome.requests = len(evil.requests)
    return _check(outcome, result, bound=10, codes=(1,))  # --timeout 1, plus start-up


def huge_body(tmp: Path) -> Outcome:
    outcome = Outcome("tags body of 300 MiB")
    mib = b" " * (1024 * 1024)  # JSON whitespace: a parser would take it all
    with Hostile(_registry(lambda r: Answer(200, body=mib, repeat=300))) as evil:
        result = run_cli(_cleanup(evil.host, "--dry-run"), _env(tmp, evil.host), timeout=60)
        outcome.requests = len(evil.requests)
    if "64 MiB" not in result.output:
        outcome.crashed = True  # no error naming the limit
    return _check(outcome, result, bound=30, codes=(1,))


# --- 10: pagination without end ----------------------------------------------------------------


def catalog_repeats_forever(tmp: Path) -> Outcome:
    outcome = Outcome("_catalog repeats its names under a new Link")
    counter = itertools.count()

    def respond(request: Request) -> Answer:
        if "/_catalog" in request.path:
            link = f'</v2/_catalog?last=grp/app&n=1000&page={next(counter)}>; rel="next"'
            return Answer(200, {"Link": link}, b'{"repositories": ["grp/app"]}')
        return _registry(lambda r: Answer(200, body=EMPTY_TAGS))(request)

    with Hostile(respond, max_requests=300) as evil:
        args = ["cleanup", "--repo", f"{evil.host}/grp/*", "--dry-run", "--max-attempts", "1"]
        result = run_cli(args, _env(tmp, evil.host), timeout=60)
        outcome.requests = evil.count(path="/_catalog")
    outcome.hung = outcome.requests > 5
    return _check(outcome, result, bound=30, codes=(0,)) if not outcome.hung else outcome


# --- 12: JSON nested past the parser's stack ---------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


def deep_json_tags(tmp: Path) -> Outcome:
    outcome = Outcome("tags answer nested 100,000 deep")
    body = b'{"tags": ' + DEEP + b"}"
    report = tmp / "report.json"
    with Hostile(_registry(lambda r: Answer(200, body=body))) as evil:
        args = _cleanup(evil.host, "--report-json", str(report))
        result = run_cli(args, _env(tmp, evil.host), timeout=60)
        outcome.requests = len(evil.requests)
    outcome.leaks += [f"{problem} (not a leak: missing)" for problem in _report_leaks(report)]
    return _check(outcome, result, bound=30, codes=(1,))


def deep_json_manifest(tmp: Path) -> Outcome:
    outcome = Outcome("manifest nested 100,000 deep")
    digest = "sha256:" + hashlib.sha256(DEEP).hexdigest()
    headers = {"Content-Type": DOCKER_MANIFEST, "Docker-Content-Digest": digest}
    tags = _registry(lambda r: Answer(200, body=b'{"name": "app", "tags": ["v1"]}'))

    def respond(request: Request) -> Answer:
        if "/manifests/" in request.path and basic_challenge(request) is None:
            return Answer(200, headers, DEEP if request.method == "GET" else b"")
        return tags(request)

    report = tmp / "report.json"
    with Hostile(respond) as evil:
        args = _cleanup(evil.host, "--report-json", str(report))
        result = run_cli(args, _env(tmp, evil.host), timeout=60)
        outcome.requests = len(evil.requests)
        deletes = evil.count(method="DELETE")
    outcome.leaks += [f"{problem} (not a leak: missing)" for problem in _report_leaks(report)]
    outcome.leaks += [f"{deletes} DELETE of an unreadable image (not a leak)"] if deletes else []
    # Unreadable, so its time is unknown: kept, and the run ends cleanly.
    return _check(outcome, result, bound=30, codes=(0,))


def deep_json_login_error(tmp: Path) -> Outcome:
    outcome = Outcome("login error body nested 100,000 deep")

    def respond(request: Request) -> Answer:
        return basic_challenge(request) or Answer(500, body=b'{"errors": ' + DEEP + b"}")

    with Hostile(respond) as evil:
        args = ["login", evil.host, "-u", USER, "--password-stdin"]
        result = run_cli(args, base_env(tmp), stdin=PASSWORD, timeout=60)
        outcome.requests = len(evil.requests)
    return _check(outcome, result, bound=30, codes=(1,))


def deep_json_token(tmp: Path) -> Outcome:
    outcome = Outcome("token answer nested 100,000 deep")

    def respond(request: Request) -> Answer:
        if request.path.startswith("/token"):
            return Answer(200, body=b'{"token": ' + DEEP + b"}")
        realm = f'Bearer realm="http://{request.header("Host")}/token",service="hostile"'
        return Answer(401, {"WWW-Authenticate": realm}, b"{}")

    with Hostile(respond) as evil:
        args = ["login", evil.host, "-u", USER, "--password-stdin"]
        result = run_cli(args, base_env(tmp), stdin=PASSWORD, timeout=60)
        outcome.requests = len(evil.requests)
    return _check(outcome, result, bound=30, codes=(1, 3))


# --- 14: a catastrophic regex against a real registry -----------------------------------------


def catastrophic_regex(tmp: Path) -> Outcome:
    outcome = Outcome("--delete-tag '(a+)+b' against a tag of 40 a")
    reg = LocalRegistry("htpasswd").start()
    try:
        push_image(reg, "grp/app", "a" * 40, via="http")
        config = write_auth_config(tmp / "docker", {reg.host: (reg.username, reg.password)})
        args = [
            "cleanup", "--repo", f"{reg.host}/grp/app", "--dry-run", "--keep-newer-than", "0s",
            "--delete-tag", "(a+)+b", "--verbose",
        ]  # fmt: skip
        try:
            result = run_cli(args, base_env(tmp, DOCKER_CONFIG=str(config)), timeout=60)
        except subprocess.TimeoutExpired:
            outcome.hung = True
            return outcome
    finally:
        reg.close()
    if "does not match delete.tags" not in result.output and result.code == 0:
        outcome.crashed = True  # the tag must be kept for the right reason
    return _check(outcome, result, bound=30, codes=(0,))


CASES: dict[str, Callable[[Path], Outcome]] = {
    "link to another host": link_to_another_host,
    "https link to plain http": https_link_to_plain_http,
    "error echoes authorization": error_echoes_authorization,
    "workflow commands in errors": workflow_commands_in_errors,
    "workflow commands in tags": workflow_commands_in_tags,
    "trickling body": trickling_body,
    "trickling headers": trickling_headers,
    "huge body": huge_body,
    "catalog repeats forever": catalog_repeats_forever,
    "deep json tags": deep_json_tags,
    "deep json manifest": deep_json_manifest,
    "deep json login error": deep_json_login_error,
    "deep json token": deep_json_token,
    "catastrophic regex": catastrophic_regex,
}
