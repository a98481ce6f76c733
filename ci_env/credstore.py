"""Registry credentials in a Docker config directory, read and stored the way docker does.

Reading (`load_credentials`, the one reader: the registry client and the native backends use
it): `auths` entries are matched by full repository first (`host/ns/app`, as podman and some CI
templates write them), then by host through the docker SDK, which also runs `credHelpers` and
`credsStore` helpers and understands `identitytoken` entries. A helper that fails is an
AuthError naming it, never a silent anonymous run.

Storing:

Where config.json names a `credHelpers` entry for the host or a `credsStore` and that helper
binary exists, the credential goes to the helper (through the docker SDK's
`docker.credentials.Store`); otherwise into `auths` as base64 `user:password`. In a per-job
directory (`ci-env env`) a login always goes to `auths`: helpers name stores shared by every
job on the machine. config.json is
read-modified-written under an exclusive `fcntl` lock and replaced atomically (0600), so
concurrent `ci-env login` runs on one config all end up in it and a reader never sees half a
file.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_env import lazy, reference, secrets
from ci_env.dockerconfig import is_job_dir
from ci_env.errors import AuthError, CiEnvError, UsageError

if TYPE_CHECKING:
    import docker.auth
    import docker.credentials
    import docker.errors
else:
    docker = lazy.module("docker")  # the SDK imports its whole API client: ~0.4 s

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LOCK_FILE = ".config.json.lock"
# docker.auth.INDEX_URL: the key docker keeps Docker Hub credentials under.
HUB_KEY = "https://index.docker.io/v1/"

Config = dict[str, Any]


def host_of(registry: str) -> str:
    """`https://Host:443/path` -> `host:443`: the host part, lower-cased, without scheme."""
    host = docker.auth.convert_to_hostname(registry.strip()).lower()
    return reference.DOCKER_HUB if reference.is_docker_hub(host) else host


def config_key(registry: str) -> str:
    """The key docker uses in `auths` / `credHelpers` for `registry`."""
    host = host_of(registry)
    return HUB_KEY if host == reference.DOCKER_HUB else host


def _same_registry(key: str, registry: str) -> bool:
    return host_of(key) == host_of(registry)


@contextmanager
def locked(config_dir: Path) -> Iterator[None]:
    """Hold the config's exclusive lock; creates the directory (0700) when missing."""
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(config_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_config(config_dir: Path) -> Config:
    """config.json ({} when absent or empty); UsageError naming the file when it is unusable."""
    path = config_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise _unreadable(path, error.strerror or str(error), "check its permissions") from None
    except ValueError:  # UnicodeDecodeError
        raise _unreadable(path, "not UTF-8 text") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except RecursionError:
        raise _unreadable(path, "nested too deeply") from None
    except ValueError as error:
        raise _unreadable(path, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _unreadable(path, "not a JSON object")
    return data


def _unreadable(path: Path, why: str, hint: str = "") -> UsageError:
    return UsageError(
        f"cannot read the Docker config {path}: {why}",
        hint or "fix or remove the file, or point --docker-config at another directory",
    )


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __repr__(self) -> str:  # never print secrets, not even in a debugger dump
        return f"Credentials(username={self.username!r})"


def load_credentials(
    docker_config: str | os.PathLike[str] | None, registry: str, repository: str = ""
) -> Credentials | None:
    """Credentials for `registry` (as in a reference: `docker.io`, `host:port`), or None.

    UsageError for an unusable config.json, AuthError when a credential helper fails."""
    if not docker_config:
        return None
    data = read_config(Path(docker_config))
    if not data:
        return None
    try:
        config = docker.auth.AuthConfig.load_config(None, data)
        auths = config.auths
        parts = repository.split("/") if repository else []
        for end in range(len(parts), 0, -1):
            found = _from_sdk(auths.get(f"{registry}/{'/'.join(parts[:end])}"))
            if found is not None:
                return found
        return _from_sdk(config.resolve_authconfig(registry))
    except docker.errors.DockerException as error:
        raise AuthError(
            f"the Docker config's credential helper failed for {registry}: {error}",
            "install the credential helper named in config.json (credsStore/credHelpers) or "
            "remove it so that ci-env login can store credentials in the file",
        ) from None


def _from_sdk(entry: dict[str, Any] | None) -> Credentials | None:
    if not entry:
        return None
    found = Credentials(
        username=str(entry.get("username") or entry.get("Username") or ""),
        password=str(entry.get("password") or entry.get("Password") or ""),
        identity_token=str(entry.get("IdentityToken") or entry.get("identitytoken") or ""),
    )
    secrets.register_basic(found.username, found.password)  # a registry may echo the header
    secrets.register(found.identity_token)
    return found if (found.password or found.identity_token) else None


def write_config(config_dir: Path, config: Config) -> None:
    """Replace config.json atomically; the temporary file is 0600 from the start (mkstemp).

    A symlinked config.json (a dotfiles checkout) is written through, as docker's
    `ConfigFile.Save` does: the link's target is replaced, the link stays."""
    target = Path(os.path.realpath(config_dir / CONFIG_FILE))
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(config, out, indent="\t")
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _helper(config: Config, key: str) -> str | None:
    """The credential helper docker would use for `key`, dropping ones that are not installed.

    A config copied from a developer machine often names `desktop` or `osxkeychain`; docker
    and the docker SDK fail on every lookup when that binary is missing, so the per-job copy
    forgets the entry and the credential goes to `auths` instead.
    """
    helpers = config.get("credHelpers") or {}
    name = helpers.get(key)
    if name and _installed(name):
        return str(name)
    if name:
        logger.warning("credential helper docker-credential-%s is not installed; using auths", name)
        del helpers[key]
    store = config.get("credsStore")
    if store and _installed(store):
        return str(store)
    if store:
        logger.warning("credential store docker-credential-%s is not installed; using auths", store)
        del config["credsStore"]
    return None


def _job_local(config: Config, key: str, config_dir: Path) -> None:
    """In a per-job directory, forget the helpers that would take this login out of it.

    A `credsStore` or a `credHelpers` entry copied from the machine's config names a store
    every job shares: job B's login would replace job A's there and outlive `ci-env logout`.
    The job's logins go to its own `auths` instead, and docker, skopeo and the docker SDK
    read them there only when no helper is named for the host, so both entries go (docker
    would still ask a credsStore first; the SDK treats an empty credHelpers entry as absent).
    """
    helpers = config.get("credHelpers") or {}
    if helpers.get(key):
        logger.warning(
            "not storing %s in the shared credential helper docker-credential-%s: this job's "
            "Docker config keeps it (%s)",
            key,
            helpers.pop(key),
            config_dir,
        )
    store = config.pop("credsStore", None)
    if store:
        logger.warning(
            "this job's Docker config no longer uses the machine-wide credential store "
            "docker-credential-%s: its logins stay in %s (credentials kept only in that "
            "store are not available to the job)",
            store,
            config_dir,
        )


def _installed(name: str) -> bool:
    return shutil.which(docker.credentials.PROGRAM_PREFIX + name) is not None


def _store_error(helper: str, action: str, error: Exception) -> CiEnvError:
    return CiEnvError(
        f"credential helper docker-credential-{helper} could not {action}: {error}",
        "check that the helper works on this machine, or remove credsStore/credHelpers from "
        "the Docker config",
    )


def store(config_dir: Path, registry: str, username: str, password: str) -> str:
    """Save a credential; returns where it went (`auths` or the helper's name)."""
    key = config_key(registry)
    with locked(config_dir):
        config = read_config(config_dir)
        if is_job_dir(config_dir):
            _job_local(config, key, config_dir)
        helper = _helper(config, key)
        auths: dict[str, Any] = config.setdefault("auths", {})
        for stale in [k for k in auths if _same_registry(k, registry)]:
            del auths[stale]
        if helper:
            try:
                docker.credentials.Store(helper).store(key, username, password)
            except docker.credentials.StoreError as error:
                raise _store_error(helper, f"store the credential for {key}", error) from error
        else:
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            auths[key] = {"auth": token}
        write_config(config_dir, config)
    return helper or "auths"


def remove(config_dir: Path, registry: str) -> bool:
    """Forget `registry`'s credential (auths and helper); False when there was none."""
    key = config_key(registry)
    if not (config_dir / CONFIG_FILE).exists():
        return False
    with locked(config_dir):
        config = read_config(config_dir)
        auths: dict[str, Any] = config.get("auths") or {}
        stale = [k for k in auths if _same_registry(k, registry)]
        for name in stale:
            del auths[name]
        found = bool(stale)
        # A job never erases from a helper: what is there belongs to the machine, not the job.
        helper = None if is_job_dir(config_dir) else _helper(config, key)
        if helper:
            try:
                docker.credentials.Store(helper).erase(key)
                found = True
            except docker.credentials.CredentialsNotFound:
                pass
            except docker.credentials.StoreError as error:
                raise _store_error(helper, f"erase the credential for {key}", error) from error
        write_config(config_dir, config)
    return found
