"""config.json credentials: auths, real credential-helper binaries, locking under concurrency."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
import sys
import textwrap
from pathlib import Path

import docker.auth
import pytest

from ci_env import credstore, secrets
from ci_env.credstore import Credentials, load_credentials
from ci_env.errors import AuthError, UsageError

# A real credential helper speaking docker's helper protocol (store/get/erase/list on stdin),
# keeping its data in a JSON file and logging its argv so tests can check no secret is there.
HELPER = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    db = os.environ["FAKE_HELPER_DB"]
    with open(db + ".argv", "a") as log:
        log.write(json.dumps(sys.argv) + "\\n")
    data = json.load(open(db)) if os.path.exists(db) else {{}}
    action, payload = sys.argv[1], sys.stdin.read()
    if action == "store":
        item = json.loads(payload)
        data[item["ServerURL"]] = [item["Username"], item["Secret"]]
    elif action == "get":
        if payload.strip() not in data:
            print("credentials not found in native keychain"); sys.exit(1)
        user, secret = data[payload.strip()]
        print(json.dumps({{"ServerURL": payload.strip(), "Username": user, "Secret": secret}}))
    elif action == "erase":
        if data.pop(payload.strip(), None) is None:
            print("credentials not found in native keychain"); sys.exit(1)
    elif action == "list":
        print(json.dumps({{k: v[0] for k, v in data.items()}}))
    json.dump(data, open(db, "w"))
    """
)


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker-credential-citest"
    exe.write_text(HELPER.format(python=sys.executable))
    exe.chmod(0o755)
    db = tmp_path / "helper-db.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELPER_DB", str(db))
    return db


def _config(directory: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((directory / "config.json").read_text())
    return loaded


def test_keys_follow_docker() -> None:
    assert credstore.config_key("docker.io") == "https://index.docker.io/v1/"
    assert credstore.config_key("registry-1.docker.io") == "https://index.docker.io/v1/"
    assert credstore.config_key("https://GHCR.io/") == "ghcr.io"
    assert credstore.config_key("registry.gitlab.com/group/app") == "registry.gitlab.com"
    assert credstore.config_key("127.0.0.1:5000") == "127.0.0.1:5000"


def test_store_in_auths_is_private_and_readable_by_docker_sdk(tmp_path: Path) -> None:
    config_dir = tmp_path / "cfg"
    (config_dir).mkdir()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {"https://ghcr.io/": {"auth": "b2xkOm9sZA=="}}, "psFormat": "x"})
    )
    assert credstore.store(config_dir, "ghcr.io", "octocat", "tok:en") == "auths"
    data = _config(config_dir)
    assert data["psFormat"] == "x"  # unrelated settings are kept
    assert data["auths"] == {"ghcr.io": {"auth": base64.b64encode(b"octocat:tok:en").decode()}}
    assert stat.S_IMODE((config_dir / "config.json").stat().st_mode) == 0o600
    found = docker.auth.load_config(str(config_dir / "config.json")).resolve_authconfig("ghcr.io")
    assert (found["username"], found["password"]) == ("octocat", "tok:en")
    assert credstore.remove(config_dir, "ghcr.io")
    assert _config(config_dir)["auths"] == {}
    assert not credstore.remove(config_dir, "ghcr.io")


def test_credentials_go_to_the_helper_named_in_the_config(tmp_path: Path, helper: Path) -> None:
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {"ghcr.io": "citest"}}))
    assert credstore.store(config_dir, "ghcr.io", "octocat", "sentinel-Secret-1") == "citest"
    assert "sentinel-Secret-1" not in (config_dir / "config.json").read_text()
    assert json.loads(helper.read_text())["ghcr.io"] == ["octocat", "sentinel-Secret-1"]
    assert "sentinel-Secret-1" not in Path(str(helper) + ".argv").read_text()  # stdin only
    config = docker.auth.load_config(str(config_dir / "config.json"))
    assert config.resolve_authconfig("ghcr.io")["Password"] == "sentinel-Secret-1"
    assert credstore.remove(config_dir, "ghcr.io")
    assert "ghcr.io" not in json.loads(helper.read_text())


def test_missing_helper_falls_back_to_auths_and_is_forgotten(tmp_path: Path) -> None:
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "not-installed-xyz"}))
    assert credstore.store(config_dir, "ghcr.io", "u", "pass-word") == "auths"
    data = _config(config_dir)
    assert "credsStore" not in data  # else every docker lookup would fail on the missing binary
    assert docker.auth.load_config(str(config_dir / "config.json")).resolve_authconfig("ghcr.io")


def test_invalid_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UsageError):
        credstore.store(tmp_path, "ghcr.io", "u", "pass-word")


def _store_one(config_dir: str, index: int) -> None:
    credstore.store(
        Path(config_dir), f"registry-{index}.example:5000", f"user{index}", f"pw{index}"
    )


def test_concurrent_stores_all_end_up_in_the_config(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_store_one, args=(str(tmp_path), i)) for i in range(20)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    auths = _config(tmp_path)["auths"]
    assert isinstance(auths, dict)
    assert sorted(auths) == sorted(f"registry-{i}.example:5000" for i in range(20))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".config.json.")]
    assert leftovers == [credstore.LOCK_FILE]  # no temporary files left behind


# --- reading: the one reader of Docker config credentials -------------------------------------


def _write_config(directory: Path, data: dict[str, object]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return str(directory)


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_lookup_by_full_repository_then_host(tmp_path: Path) -> None:
    config = _write_config(
        tmp_path,
        {
            "auths": {
                "registry.example.com": {"auth": _basic("host-user", "host-pass")},
                "registry.example.com/team": {"auth": _basic("team-user", "team-pass")},
                "https://index.docker.io/v1/": {"auth": _basic("hub-user", "hub-pass")},
                "token.example.com": {"identitytoken": "refresh-tok"},
            }
        },
    )
    assert load_credentials(config, "registry.example.com", "team/app") == Credentials(
        "team-user", "team-pass"
    )
    assert load_credentials(config, "registry.example.com", "other/app") == Credentials(
        "host-user", "host-pass"
    )
    assert load_credentials(config, "docker.io", "library/nginx") == Credentials(
        "hub-user", "hub-pass"
    )
    assert load_credentials(config, "token.example.com") == Credentials(
        identity_token="refresh-tok"
    )
    assert load_credentials(config, "unknown.example.com") is None
    assert "team-pass" in secrets.registered()
    assert "team-pass" not in repr(load_credentials(config, "registry.example.com", "team/x"))


def test_missing_or_broken_write_config(tmp_path: Path) -> None:
    assert load_credentials(None, "ghcr.io") is None
    assert load_credentials(str(tmp_path / "nope"), "ghcr.io") is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read the Docker config"):
        load_credentials(str(tmp_path), "ghcr.io")


def test_cred_helper_is_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helper-user\\",'
        '\\"Secret\\":\\"helper-secret-1\\"}"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    config = _write_config(tmp_path / "cfg", {"credHelpers": {"ghcr.io": "fake"}})
    assert load_credentials(config, "ghcr.io", "acme/app") == Credentials(
        "helper-user", "helper-secret-1"
    )
    broken = _write_config(tmp_path / "cfg2", {"credsStore": "missing-helper"})
    with pytest.raises(AuthError, match="credential helper"):
        load_credentials(broken, "ghcr.io")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_an_unusable_config_is_a_usage_error(tmp_path: Path, content: bytes, says: str) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(UsageError, match=f"cannot read the Docker config .*{says}"):
        load_credentials(str(tmp_path), "ghcr.io")


def test_an_empty_config_has_no_credentials(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("")
    assert load_credentials(str(tmp_path), "ghcr.io") is None
