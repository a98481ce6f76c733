"""Docker Registry HTTP API v2 / OCI distribution client for one registry host.

Every call goes through `request()`: the authenticator adds credentials learnt from earlier
challenges, a 401 is answered once (Basic, or a token for the challenge's scope), and a
failure is translated into a `ci_env.errors` type. Retries live in the transport.
Behaviour follows the OCI distribution-spec (github.com/opencontainers/distribution-spec,
spec.md) and CNCF distribution 2.8 as observed against Debian's docker-registry in the tests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import requests

from ci_env import timeparse
from ci_env.credstore import Credentials, load_credentials
from ci_env.errors import NotFoundError, RegistryError, UnsupportedError
from ci_env.oci import (
    MANIFEST_ACCEPT,
    OCI_INDEX,
    REVISION,
    Descriptor,
    Manifest,
    body_media_type,
    check_content,
    child_digests,
    header_media_type,
    json_list,
    parse_manifest,
    platform_child,
    sha256_digest,
)
from ci_env.options import BackendOptions
from ci_env.reference import api_host, is_digest
from ci_env.registry import responses
from ci_env.registry.auth import Authenticator
from ci_env.registry.cache import ContentStore, store_for
from ci_env.registry.transport import Transport

logger = logging.getLogger(__name__)

ACCEPT = ", ".join(MANIFEST_ACCEPT)
PAGE_SIZE = 1000
# Pages of one listing before ci-env gives up (1,000,000 names at PAGE_SIZE).
MAX_PAGES = 1000
# Bytes of checked manifest bodies kept for the run (`RegistryClient.get`): beyond, reads repeat.
FETCHED_BYTES = 64 * 1024 * 1024


def _action(method: str) -> str:
    if method in ("GET", "HEAD"):
        return "pull"
    return "delete" if method == "DELETE" else "push"


def parse_time(value: Any) -> datetime | None:
    """A config blob's `created` as an aware datetime; None when unusable."""
    parsed = timeparse.parse_time(value) if isinstance(value, str) else None
    if parsed is None or parsed.year <= 1970:  # reproducible builds stamp the epoch
        return None
    return parsed


def _hashable(item: Any) -> Any:
    return item if isinstance(item, str | int | float | bool | None) else repr(item)


def _descriptor(body: bytes, digest: str, header: str) -> Descriptor:
    """The descriptor of a checked body: the body's media type, else a specific header's."""
    try:
        data = responses.loads(body)
    except ValueError:
        data = None
    media_type = body_media_type(data, header) if isinstance(data, dict) else header
    return Descriptor(digest, header_media_type(media_type), len(body))


class RegistryClient:
    """One registry's API. Thread-safe; reuse one instance per registry and run."""

    def __init__(
        self,
        registry: str,
        options: BackendOptions,
        credentials: Credentials | None = None,
        transport: Transport | None = None,
        store: ContentStore | None = None,
    ) -> None:
        self.registry = registry  # as in the reference (docker.io for Docker Hub)
        self.options = options
        self.transport = transport or Transport(api_host(registry), options)
        # Manifests and config blobs by digest (content only, never existence: see `get`).
        self.store = store or store_for(options.cache_dir, options.cache_max_bytes)
        self._present: set[tuple[str, str]] = set()  # (repository, digest) served this run
        self._fixed = credentials
        self._lock = threading.Lock()
        self._auths: dict[Credentials | None, Authenticator] = {}
        self._creds: dict[str, Credentials | None] = {}
        self._configs: dict[str, tuple[datetime | None, str | None]] = {}
        # (repository, digest) -> a checked body this run fetched there: the listing's GET by
        # tag then serves the graph walk and time reads. Keyed by repository too, since a
        # manifest present in one repository says nothing about another.
        self._fetched: dict[tuple[str, str], tuple[bytes, Descriptor]] = {}
        self._fetched_bytes = 0

    # --- plumbing -------------------------------------------------------------------------

    def credentials(self, repository: str = "") -> Credentials | None:
        """Credentials for `repository` from the Docker config (full path first, then host)."""
        if self._fixed is not None:
            return self._fixed
        with self._lock:
            if repository not in self._creds:
                self._creds[repository] = load_credentials(
                    self.options.docker_config, self.registry, repository
                )
            return self._creds[repository]

    def _authenticator(self, repository: str) -> Authenticator:
        creds = self.credentials(repository)
        with self._lock:
            if creds not in self._auths:
                self._auths[creds] = Authenticator(self.transport, creds)
            return self._auths[creds]

    def request(
        self,
        method: str,
        path: str,
        *,
        repository: str = "",
        what: str = "",
        ok: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with auth; raise the translated error unless 2xx or a status in `ok`.

        Credentials go only to the registry's own origin (scheme, host, port): a `Link` or
        `Location` the registry hands back on another origin is followed without them."""
        if not self.transport.same_origin(path):
            logger.debug(
                "%s %s: another origin than %s; no credentials", method, path, self.registry
            )
            response = self.transport.send(method, path, headers=headers, **kwargs)
            responses.check(response, what or f"{method} {path}", self.registry, ok)
            return response
        auth = self._authenticator(repository)
        key = (repository, _action(method))
        for attempt in (1, 2):
            sent = auth.headers(key)
            response = self.transport.send(
                method, path, headers={**(headers or {}), **sent}, **kwargs
            )
            if response.status_code != 401 or attempt == 2:
                break
            if not auth.answer(response, key, sent.get("Authorization", "")):
                break
        responses.check(response, what or f"{method} {path}", self.registry, ok)
        return response

    def listing(self, path: str, key: str, *, repository: str, what: str) -> Iterator[list[Any]]:
        """The `key` list of each page, following `Link: <...>; rel="next"`.

        Stops at a repeated URL or a page with nothing new (registries ignoring `last` send
        the same names again under a fresh Link), and fails after `MAX_PAGES` pages: a
        registry that never stops paging would otherwise keep a run going for ever."""
        seen: set[Any] = set()
        pages = self._pages(path, repository=repository, what=what)
        for number, (page, more) in enumerate(pages, 1):
            items = json_list(page, key, what)
            new = [item for item in items if _hashable(item) not in seen]
            if number > 1 and not new:
                return
            seen.update(_hashable(item) for item in new)
            yield items
            if number >= MAX_PAGES and more:
                raise RegistryError(
                    f"{what}: {self.registry} was still paging after {MAX_PAGES} pages",
                    f"ci-env reads at most {MAX_PAGES} pages of {PAGE_SIZE}; the registry or a "
                    "proxy in front of it keeps sending a next page",
                )

    def pages(self, path: str, *, repository: str, what: str) -> Iterator[dict[str, Any]]:
        """Follow `Link: <...>; rel="next"`; stop at a repeated URL (registries ignoring `last`)."""
        for page, _ in self._pages(path, repository=repository, what=what):
            yield page

    def _pages(
        self, path: str, *, repository: str, what: str
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """Each page's body, and whether it names a next page not seen yet."""
        url: str | None = path
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            response = self.request("GET", url, repository=repository, what=what)
            try:
                body = responses.loads(response.content)
            except ValueError:
                raise RegistryError(f"{what}: {self.registry} answered non-JSON") from None
            if not isinstance(body, dict):
                raise RegistryError(
                    f"{what}: the registry's answer is malformed (not a JSON object)",
                    "the registry or a proxy in front of it sent a broken answer; retry later",
                )
            link = response.links.get("next", {}).get("url")
            url = urljoin(self.transport.url(url), link) if link else None
            yield body, bool(url and url not in seen)

    # --- reading --------------------------------------------------------------------------

    def ping(self) -> requests.Response:
        """`GET /v2/` with credentials; AuthError when refused."""
        return self.request("GET", "/v2/", what="GET /v2/")

    def catalog(self, prefix: str = "") -> list[str]:
        """Repositories from `/v2/_catalog` (all pages), filtered to `prefix`."""
        found: dict[str, None] = {}  # ordered set: registries may repeat names across pages
        path = f"/v2/_catalog?n={PAGE_SIZE}"
        for names in self.listing(path, "repositories", repository="", what="catalog"):
            for name in names:
                if not prefix or str(name).startswith(prefix):
                    found[str(name)] = None
        return list(found)

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository`, deduplicated, sorted; NotFoundError for an unknown one."""
        return sorted(name for page in self.tag_pages(repository) for name in page)

    def tag_pages(self, repository: str) -> Iterator[list[str]]:
        """The tags of `repository` a page at a time, each tag once, as the pages arrive;
        NotFoundError for an unknown one."""
        found: set[str] = set()
        what = f"listing tags of {repository}"
        path = f"/v2/{repository}/tags/list?n={PAGE_SIZE}"
        for tags in self.listing(path, "tags", repository=repository, what=what):
            new = list(dict.fromkeys(str(tag) for tag in tags if str(tag) not in found))
            found.update(new)
            yield new

    def head(self, repository: str, reference: str) -> Descriptor | None:
        """Digest of `reference` (tag or digest) via HEAD, falling back to GET; None if absent."""
        response = self._head(repository, reference)
        digest = response.headers.get("Docker-Content-Digest", "")
        if response.status_code == 404:
            return None
        if response.ok and digest:
            return Descriptor(
                digest,
                header_media_type(response.headers.get("Content-Type", "")),
                int(response.headers.get("Content-Length") or 0),
            )
        try:
            _, descriptor = self.get(repository, reference)
        except NotFoundError:
            return None
        return descriptor

    def get(self, repository: str, reference: str) -> tuple[bytes, Descriptor]:
        """Manifest bytes and descriptor; NotFoundError when absent. The descriptor's digest is
        the body's own (checked by `check_content`), its media type the body's. A digest this
        run already fetched from `repository` (by tag or digest) is answered without a request,
        else from the content store when it holds it (see `_stored`); every body read is stored."""
        with self._lock:
            known = self._fetched.get((repository, reference)) if is_digest(reference) else None
        if known is not None:
            return known
        stored = self._stored(repository, reference) if is_digest(reference) else None
        fetched = stored or self._get(repository, reference)
        self._keep(repository, fetched)
        return fetched

    def _keep(self, repository: str, fetched: tuple[bytes, Descriptor]) -> None:
        body, descriptor = fetched
        with self._lock:
            key = (repository, descriptor.digest)
            if key not in self._fetched and self._fetched_bytes + len(body) <= FETCHED_BYTES:
                self._fetched[key] = fetched
                self._fetched_bytes += len(body)

    def _get(self, repository: str, reference: str) -> tuple[bytes, Descriptor]:
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            what=f"GET manifest {repository}@{reference}",
            headers={"Accept": ACCEPT},
        )
        body = response.content
        by_digest = is_digest(reference)
        name = f"manifest {reference}" if by_digest else f"the manifest of tag {reference}"
        digest = check_content(
            body,
            f"{name} in {repository}",
            reference if by_digest else "",
            response.headers.get("Docker-Content-Digest", ""),
        )
        self.remember(repository, digest, body)
        return body, _descriptor(body, digest, response.headers.get("Content-Type", ""))

    def remember(self, repository: str, digest: str, body: bytes) -> None:
        """Record a body the registry served for `digest` in `repository` (checked by the
        caller): stored for any repository, and known present in this one for this run."""
        self.store.put(digest, body)
        with self._lock:
            self._present.add((repository, digest))

    def _stored(self, repository: str, digest: str) -> tuple[bytes, Descriptor] | None:
        """The stored body of `digest`, if the store holds it and `repository` has it.

        The store proves content, not that this repository still (or ever) holds the
        manifest: one the registry has not served here in this run is checked with a HEAD,
        and where that is not a plain 200 the GET decides (a missing child must still answer
        404 MANIFEST_UNKNOWN, i.e. broken)."""
        body = self.store.get(digest)
        if body is None:
            return None
        with self._lock:
            present = (repository, digest) in self._present
        if not present and not self._exists(repository, digest):
            return None
        with self._lock:
            self._present.add((repository, digest))
        return body, _descriptor(body, digest, "")

    def _exists(self, repository: str, digest: str) -> bool:
        return self._head(repository, digest).status_code == 200

    def _head(self, repository: str, reference: str) -> requests.Response:
        """HEAD of a manifest; 404, 405 and 501 are answers, not errors."""
        separator = "@" if is_digest(reference) else ":"
        return self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            what=f"HEAD manifest {repository}{separator}{reference}",
            ok=(404, 405, 501),
            headers={"Accept": ACCEPT},
        )

    def manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest `reference` names, its body checked against its digest (see `get`)."""
        body, descriptor = self.get(repository, reference)
        return parse_manifest(body, descriptor.digest, descriptor.media_type)

    def blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes; a config blob (JSON) from the store when it holds it, and stored
        after a GET if it hashes to `digest` (the store keeps nothing else)."""
        stored = self.store.get(digest)
        if stored is not None:
            return stored  # a blob is named by its content; a manifest proved it is here
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            what=f"GET blob {digest} of {repository}",
        )
        self.store.put(digest, response.content)
        return response.content

    def _config(self, repository: str, config_digest: str) -> tuple[datetime | None, str | None]:
        """(`created`, revision label) of a config blob, cached by digest: configs are
        content-addressed, and keep.git and the time rules both read them (one GET for both)."""
        with self._lock:
            if config_digest in self._configs:
                return self._configs[config_digest]
        try:
            data = responses.loads(self.blob(repository, config_digest))
        except (ValueError, NotFoundError):
            data = None
        data = data if isinstance(data, dict) else {}
        config = data.get("config")
        labels = config.get("Labels") if isinstance(config, dict) else None
        found = labels.get(REVISION) if isinstance(labels, dict) else None
        value = (
            parse_time(data.get("created")),
            found if isinstance(found, str) and found else None,
        )
        with self._lock:
            self._configs[config_digest] = value
        return value

    def config_time(self, repository: str, config_digest: str) -> datetime | None:
        """`created` of a config blob."""
        return self._config(repository, config_digest)[0]

    def _manifest_object(
        self, repository: str, digest: str
    ) -> tuple[dict[str, Any], Manifest] | None:
        """A manifest's JSON object and its parse; None where it is gone or not an object."""
        try:
            body, descriptor = self.get(repository, digest)
            data = responses.loads(body)
        except (NotFoundError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return data, parse_manifest(body, descriptor.digest, descriptor.media_type)

    def image_created(self, repository: str, digest: str) -> datetime | None:
        """Build time of an image from its config blob; an index uses its first platform child."""
        read = self._manifest_object(repository, digest)
        if read is None:
            return None
        data, manifest = read
        if manifest.is_index or "manifests" in data:
            child = platform_child(data)
            return self.image_created(repository, child) if child else None
        if manifest.config_digest is None:
            return None
        return self.config_time(repository, manifest.config_digest)

    def image_revision(self, repository: str, digest: str) -> str | None:
        """`org.opencontainers.image.revision`: the index's annotation, else its first
        platform's; a manifest's annotation, else its config label (docker/metadata-action
        writes both; buildx and kaniko only the label)."""
        read = self._manifest_object(repository, digest)
        if read is None:
            return None
        data, manifest = read
        annotations = data.get("annotations")
        found = annotations.get(REVISION) if isinstance(annotations, dict) else None
        if isinstance(found, str) and found:
            return found
        if manifest.is_index or "manifests" in data:
            child = platform_child(data)
            return self.image_revision(repository, child) if child else None
        if manifest.config_digest is None:
            return None
        return self._config(repository, manifest.config_digest)[1]

    def referrers(self, repository: str, digest: str) -> list[str]:
        """Digests whose `subject` is `digest`: the OCI referrers API, else the
        `sha256-<hex>` fallback tag index (distribution-spec "Referrers Tag Schema")."""
        response = self.request(
            "GET",
            f"/v2/{repository}/referrers/{digest}",
            repository=repository,
            what=f"referrers of {digest}",
            ok=(400, 404, 405),
            headers={"Accept": OCI_INDEX},
        )
        what = f"referrers of {digest}"
        if response.ok and response.headers.get("Content-Type", "").startswith(OCI_INDEX):
            try:
                data = responses.loads(response.content)
            except ValueError:
                raise RegistryError(f"{what}: the registry's answer is not JSON") from None
            if not isinstance(data, dict):
                raise RegistryError(f"{what}: the registry's answer is malformed (not an object)")
            return child_digests(data, what)
        fallback = digest.replace(":", "-", 1)
        try:
            body, _ = self.get(repository, fallback)
        except NotFoundError:
            return []
        try:
            data = responses.loads(body)
        except ValueError:
            return []
        if not isinstance(data, dict):
            return []
        return child_digests(data, what)

    # --- writing --------------------------------------------------------------------------

    def upload_blob(self, repository: str, data: bytes) -> str:
        """Upload a small blob (POST then monolithic PUT); returns its digest.

        A PUT whose answer was lost may have completed the upload, and its retry then gets
        404 BLOB_UPLOAD_UNKNOWN: so on failure we check whether the blob exists, and start
        one fresh upload when it does not.
        """
        digest = sha256_digest(data)
        for attempt in (1, 2):
            try:
                self._upload(repository, digest, data)
                return digest
            except UnsupportedError:
                raise  # uploads refused outright: nothing to recover
            except RegistryError:
                if self.blob_exists(repository, digest):
                    return digest
                if attempt == 2:
                    raise
        return digest

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            what=f"HEAD blob {digest} of {repository}",
            ok=(404,),
        )
        return response.status_code == 200

    def _upload(self, repository: str, digest: str, data: bytes) -> None:
        start = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            repository=repository,
            what=f"starting a blob upload to {repository}",
        )
        location = start.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.registry} started an upload without a Location")
        url = urljoin(self.transport.url(f"/v2/{repository}/blobs/uploads/"), location)
        self.request(
            "PUT",
            url,
            repository=repository,
            what=f"uploading blob {digest} to {repository}",
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or digest; returns its digest."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            what=f"PUT manifest {repository}:{reference}",
            data=body,
            headers={"Content-Type": media_type},
        )
        return response.headers.get("Docker-Content-Digest") or sha256_digest(body)

    def delete_manifest(self, repository: str, reference: str) -> None:
        """DELETE by digest (or tag). NotFoundError (404) means it is already gone."""
        self.request(
            "DELETE",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            what=f"DELETE manifest {repository}@{reference}",
        )

    def close(self) -> None:
        self.transport.close()
