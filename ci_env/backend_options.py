"""The settings loader for registry backends: CLI options + environment -> `BackendOptions`.

`add_backend_arguments(parser)` adds the shared registry options and one `--repo-<name>`
option per `NativeOption` any backend declares; `backend_options(args, env)` resolves them with
the project's precedence (option, `CIENV_<NAME>`, `WERF_<NAME>`, fallbacks — see settings.py)
and registers every secret it reads. It is the one builder of `BackendOptions`: cleanup, detect
and probe use it with the shared options, login and env with their own defaults.
`registry_settings(args, env)` adds what choosing a kind needs, resolved at the same time.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ci_env import dockerconfig, secrets, settings
from ci_env.errors import UsageError
from ci_env.options import BackendOptions
from ci_env.registries.base import NativeOption
from ci_env.registries.detect import Detection, detect, loaded_kinds

logger = logging.getLogger(__name__)

_DEFAULTS = BackendOptions()


def native_options() -> list[NativeOption]:
    """Every backend's `NativeOption`, first declaration of a name wins."""
    found: dict[str, NativeOption] = {}
    for _, backend in loaded_kinds():
        for option in backend.native_options:
            found.setdefault(option.name, option)
    return list(found.values())


def _dest(name: str) -> str:
    return "repo_" + name.replace("-", "_")


def _env_name(name: str) -> str:
    return "REPO_" + name.upper().replace("-", "_")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Registry options shared by cleanup, detect and probe (defaults None: env decides)."""
    group = parser.add_argument_group("registry")
    group.add_argument(
        "--repo-container-registry",
        metavar="KIND",
        help="registry kind, or auto (default; env CIENV_/WERF_REPO_CONTAINER_REGISTRY)",
    )
    group.add_argument(
        "--docker-config",
        metavar="DIR",
        help="Docker config directory with the credentials (default: CIENV_DOCKER_CONFIG, "
        "WERF_DOCKER_CONFIG, DOCKER_CONFIG, ~/.docker)",
    )
    group.add_argument(
        "--insecure-registry",
        action="append",
        metavar="HOST",
        help="allow plain http to HOST[:PORT] (loopback always is); repeatable; also "
        "CIENV_INSECURE_REGISTRIES=host1,host2",
    )
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="per request (30)")
    group.add_argument("--max-attempts", type=int, metavar="N", help="per request (5)")
    group.add_argument(
        "--max-retry-seconds", type=float, metavar="SECONDS", help="retrying one request (120)"
    )
    group.add_argument(
        "--max-requests-per-second", type=float, metavar="N", help="global request rate limit"
    )
    group.add_argument(
        "--repo-api-url", metavar="URL", help="base URL of the registry's native API"
    )
    native = parser.add_argument_group(
        "registry credentials (prefer the variables: options show in ps)"
    )
    for option in native_options():
        env = _env_name(option.name)
        native.add_argument(
            f"--repo-{option.name}",
            dest=_dest(option.name),
            metavar="VALUE",
            help=f"{option.help} (env CIENV_{env}, WERF_{env}"
            + "".join(f", {name}" for name in option.fallbacks)
            + ")",
        )


def _setting(
    args: argparse.Namespace, attr: str, name: str, env: Mapping[str, str] | None
) -> str | None:
    value = getattr(args, attr, None)
    return str(value) if value is not None else settings.cienv(name, env=env)


def _float(text: str | None, name: str, default: float | None) -> float | None:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # float() takes "nan" and "inf": no timeout means them
        raise UsageError(
            f"{name} {text!r} is not a number",
            f"set --{name.lower().replace('_', '-')} / CIENV_{name} to a finite number",
        )
    return value


def container_registry_override(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> str | None:
    """The kind chosen with --repo-container-registry or its variables (None = auto)."""
    value = getattr(args, "repo_container_registry", None)
    return value or settings.cienv("REPO_CONTAINER_REGISTRY", env=env)


def docker_config_dir(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str:
    """`dockerconfig.config_dir` for a command with a --docker-config option."""
    source = settings.environ() if env is None else env
    return str(dockerconfig.config_dir(getattr(args, "docker_config", None), source))


def cache_dir(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str | None:
    """The content cache's directory; None (memory only) with --no-cache or for a command
    without the cache options. CIENV_ only: werf has no such cache for WERF_ to mean."""
    if not hasattr(args, "no_cache"):
        return None
    if args.no_cache or settings.flag(
        settings.env_first("CIENV_NO_CACHE", env=env), "CIENV_NO_CACHE"
    ):
        return None
    given = getattr(args, "cache_dir", None) or settings.env_first("CIENV_CACHE_DIR", env=env)
    if given:
        return str(given)
    source = os.environ if env is None else env
    xdg = source.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and is ignored
        home = source.get("HOME") or os.path.expanduser("~")
        xdg = os.path.join(home, ".cache")
    return os.path.join(xdg, "ci-env")


def _api_urls(args: argparse.Namespace, env: Mapping[str, str] | None) -> dict[str, str]:
    urls: dict[str, str] = {}
    github = settings.env_first("GITHUB_API_URL", env=env)
    if github:
        urls["github"] = github
    gitlab = settings.env_first("CI_API_V4_URL", env=env)
    if gitlab:
        urls["gitlab"] = gitlab
    explicit = getattr(args, "repo_api_url", None) or settings.cienv("REPO_API_URL", env=env)
    if explicit:
        # One backend serves a run, so the explicit URL applies to whichever kind is chosen.
        urls.update({kind: explicit for kind, _ in loaded_kinds()})
    return urls


def _native_values(args: argparse.Namespace, env: Mapping[str, str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for option in native_options():
        given = getattr(args, _dest(option.name), None)
        value = given or settings.cienv(_env_name(option.name), *option.fallbacks, env=env)
        if value:
            if option.secret:
                secrets.register(value)
            if option.secret and given:
                # As `docker login --password` warns: argv is readable by every local user.
                logger.warning(
                    "--repo-%s on the command line is visible to other users of this machine"
                    " (ps, /proc); set CIENV_%s instead",
                    option.name,
                    _env_name(option.name),
                )
            values[option.name] = value
    return values


def backend_options(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    *,
    defaults: BackendOptions = _DEFAULTS,
) -> BackendOptions:
    """Build `BackendOptions` from parsed args, then `CIENV_*`/`WERF_*` variables, then the
    transport settings of `defaults` (a command without the options takes its own)."""
    insecure = list(getattr(args, "insecure_registry", None) or [])
    for name in ("INSECURE_REGISTRIES", "INSECURE_REGISTRY"):
        insecure += (settings.cienv(name, env=env) or "").replace(",", " ").split()

    def number(attr: str, name: str, default: float | None) -> float | None:
        return _float(_setting(args, attr, name, env), name, default)

    timeout = number("timeout", "TIMEOUT", defaults.timeout)
    attempts = number("max_attempts", "MAX_ATTEMPTS", defaults.max_attempts)
    retry = number("max_retry_seconds", "MAX_RETRY_SECONDS", defaults.max_retry_seconds)
    rate = number("max_requests_per_second", "MAX_REQUESTS_PER_SECOND", None)
    options = BackendOptions(
        docker_config=docker_config_dir(args, env),
        insecure_registries=frozenset(host.lower() for host in insecure),
        timeout=defaults.timeout if timeout is None else timeout,
        max_attempts=defaults.max_attempts if attempts is None else int(attempts),
        max_retry_seconds=defaults.max_retry_seconds if retry is None else retry,
        max_requests_per_second=rate,
        native=_native_values(args, env),
        api_urls=_api_urls(args, env),
        cache_dir=cache_dir(args, env),
    )
    _validate(options)
    return options


def _validate(options: BackendOptions) -> None:
    if options.timeout <= 0 or options.max_attempts < 1 or options.max_retry_seconds < 0:
        raise UsageError(
            "timeouts and attempts must be positive",
            "check --timeout, --max-attempts and --max-retry-seconds (and their CIENV_ variables)",
        )


@dataclass(frozen=True)
class RegistrySettings:
    """What talking to a registry needs, resolved once: options and the kind's evidence."""

    options: BackendOptions
    kind: str | None = None  # --repo-container-registry or its variables (None = auto)
    gitlab_host: str | None = None  # CI_REGISTRY

    def choose_kind(
        self, registry: str, *, kind: str | None = None, probe_unknown: bool = False
    ) -> Detection:
        """Detect the kind for `registry`; `kind` (e.g. a saved plan's) wins over the setting."""
        return detect(
            registry,
            override=kind or self.kind,
            gitlab_host=self.gitlab_host,
            probe_unknown=probe_unknown,
            options=self.options,
        )


def registry_settings(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    options: BackendOptions | None = None,
) -> RegistrySettings:
    """`RegistrySettings` from args/env (with `options` when they are already built)."""
    return RegistrySettings(
        backend_options(args, env) if options is None else options,
        container_registry_override(args, env),
        settings.env_first("CI_REGISTRY", env=env),
    )


def choose_kind(
    args: argparse.Namespace,
    registry: str,
    options: BackendOptions,
    *,
    probe_unknown: bool = False,
    env: Mapping[str, str] | None = None,
) -> Detection:
    """Detect the kind for `registry` with the override and `CI_REGISTRY` from args/env."""
    found = registry_settings(args, env, options)
    return found.choose_kind(registry, probe_unknown=probe_unknown)
