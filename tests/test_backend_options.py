"""The backend settings loader: `--repo-<name>` options from every backend's NativeOptions,
precedence option > CIENV_ > WERF_ > fallbacks, secrets registered, bad numbers exit 2."""

from __future__ import annotations

import argparse

import pytest

from ci_env import secrets
from ci_env.backend_options import (
    add_backend_arguments,
    backend_options,
    choose_kind,
    container_registry_override,
    native_options,
    registry_settings,
)
from ci_env.commands import cleanup
from ci_env.errors import UsageError
from ci_env.registries.detect import loaded_kinds


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    return parser.parse_args(list(argv))


def test_every_native_option_becomes_a_cli_option() -> None:
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    text = parser.format_help()
    declared = {o.name for _, b in loaded_kinds() for o in b.native_options}
    assert declared == {o.name for o in native_options()}
    for name in declared:
        assert f"--repo-{name}" in text


def test_precedence_and_secrets() -> None:
    option = next(o for o in native_options() if o.secret)
    env_name = "REPO_" + option.name.upper().replace("-", "_")
    env = {f"WERF_{env_name}": "werf-value-1", f"CIENV_{env_name}": "cienv-value-1"}
    assert backend_options(parse(), env).native[option.name] == "cienv-value-1"
    del env[f"CIENV_{env_name}"]
    assert backend_options(parse(), env).native[option.name] == "werf-value-1"
    assert "werf-value-1" in secrets.registered()
    cli = parse(f"--repo-{option.name}", "cli-value-1")
    assert backend_options(cli, env).native[option.name] == "cli-value-1"


def test_fallback_variables() -> None:
    with_fallback = [o for o in native_options() if o.fallbacks]
    assert with_fallback, "no backend declares fallback variables"
    option = with_fallback[0]
    found = backend_options(parse(), {option.fallbacks[0]: "from-fallback"})
    assert found.native[option.name] == "from-fallback"


def test_transport_settings_and_docker_config(tmp_path: object) -> None:
    env = {
        "CIENV_TIMEOUT": "7",
        "WERF_MAX_ATTEMPTS": "2",
        "CIENV_INSECURE_REGISTRIES": "a.example.com:5000, B.example.com",
        "DOCKER_CONFIG": "/cfg/docker",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3",
    }
    opts = backend_options(
        parse("--insecure-registry", "c.example.com", "--max-retry-seconds", "9"), env
    )
    assert (opts.timeout, opts.max_attempts, opts.max_retry_seconds) == (7.0, 2, 9.0)
    assert opts.insecure_registries == {"a.example.com:5000", "b.example.com", "c.example.com"}
    assert opts.docker_config == "/cfg/docker"
    assert opts.api_urls["github"] == "https://ghe.example.com/api/v3"
    assert opts.max_requests_per_second is None
    explicit = backend_options(
        parse("--docker-config", "/x", "--repo-api-url", "https://h/api"), env
    )
    assert explicit.docker_config == "/x"
    assert explicit.api_urls["harbor"] == "https://h/api"
    assert backend_options(parse(), {"HOME": "/home/u"}).docker_config.endswith(".docker")


def test_bad_numbers_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not a number"):
        backend_options(parse(), {"CIENV_TIMEOUT": "soon"})
    with pytest.raises(UsageError, match="positive"):
        backend_options(parse("--max-attempts", "0"), {})


def test_container_registry_override_and_choose_kind() -> None:
    assert container_registry_override(parse(), {"WERF_REPO_CONTAINER_REGISTRY": "gcr"}) == "gcr"
    args = parse("--repo-container-registry", "yandex")
    assert container_registry_override(args, {"CIENV_REPO_CONTAINER_REGISTRY": "gcr"}) == "yandex"
    opts = backend_options(parse(), {})
    found = choose_kind(
        parse(), "gitlab.example.com", opts, env={"CI_REGISTRY": "gitlab.example.com"}
    )
    assert found.kind == "gitlab"


def test_a_command_without_the_transport_options_gives_its_own_defaults() -> None:
    from ci_env.commands.login import LOGIN_DEFAULTS  # noqa: PLC0415

    login = argparse.Namespace(insecure_registry=["Reg.example:5000"], docker_config=None)
    opts = backend_options(login, {"HOME": "/home/u"}, defaults=LOGIN_DEFAULTS)
    assert (opts.timeout, opts.max_attempts, opts.max_retry_seconds) == (20.0, 3, 60.0)
    assert opts.insecure_registries == {"reg.example:5000"}
    assert opts.docker_config == "/home/u/.docker"
    tuned = backend_options(login, {"CIENV_TIMEOUT": "7"}, defaults=LOGIN_DEFAULTS)
    assert tuned.timeout == 7.0
    assert tuned.max_attempts == 3


def test_registry_settings_choose_the_kind_once_resolved() -> None:
    env = {"WERF_REPO_CONTAINER_REGISTRY": "harbor", "CI_REGISTRY": "gitlab.example.com"}
    found = registry_settings(parse(), env)
    assert (found.kind, found.gitlab_host) == ("harbor", "gitlab.example.com")
    assert found.choose_kind("r.example").kind == "harbor"
    assert found.choose_kind("r.example", kind="quay").kind == "quay"  # a saved plan's kind wins
    auto = registry_settings(parse(), {"CI_REGISTRY": "gitlab.example.com"})
    assert auto.choose_kind("gitlab.example.com").kind == "gitlab"


def parse_cleanup(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cleanup.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ((), {"HOME": "/h"}, "/h/.cache/ci-env"),
        ((), {"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/ci-env"),
        ((), {"HOME": "/h", "XDG_CACHE_HOME": "relative"}, "/h/.cache/ci-env"),
        ((), {"HOME": "/h", "CIENV_CACHE_DIR": "/c"}, "/c"),
        (("--cache-dir", "/o"), {"HOME": "/h", "CIENV_CACHE_DIR": "/c"}, "/o"),
        (("--no-cache", "--cache-dir", "/o"), {"HOME": "/h"}, None),
        ((), {"HOME": "/h", "CIENV_NO_CACHE": "true", "CIENV_CACHE_DIR": "/c"}, None),
    ],
)
def test_the_cache_directory_precedence(
    argv: tuple[str, ...], env: dict[str, str], expected: str | None
) -> None:
    assert backend_options(parse_cleanup(*argv), env).cache_dir == expected


def test_a_command_without_the_cache_options_keeps_the_cache_in_memory() -> None:
    assert backend_options(parse(), {"HOME": "/h", "CIENV_CACHE_DIR": "/c"}).cache_dir is None


def test_a_bad_no_cache_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="CIENV_NO_CACHE"):
        backend_options(parse_cleanup(), {"HOME": "/h", "CIENV_NO_CACHE": "maybe"})
