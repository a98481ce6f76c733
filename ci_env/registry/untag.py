"""The untag ladder: remove one tag without touching other tags on the same digest.

Deleting by digest removes every tag on that digest, so it can never be used to drop one tag.
Rungs, first that works wins (and is memoised by the caller's ladder instance):
  1. `DELETE /v2/<name>/manifests/<tag>` — the spec's tag delete; done on 202.
     (distribution 2.8 answers 400 DIGEST_INVALID, Harbor 400 UNSUPPORTED: next rung.)
  2. the backend's native untag (Docker Hub, Quay, Harbor, ACR APIs), where one exists.
  3. push a unique throwaway manifest (empty config with a label, no layers, same media-type
     family) to the tag, delete that new digest, and check the tag is gone. Only the tag moves
     to the throwaway, so deleting the throwaway removes nothing else.
  4. refuse with an UnsupportedError.
Before any rung the tag must still point at the planned digest: a tag re-pushed since the plan
is someone's new image and is left alone.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable

from ci_env.errors import NotFoundError, RegistryError, UnsupportedError
from ci_env.oci import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ensure_still_at,
    sha256_digest,
)
from ci_env.registry.client import RegistryClient

logger = logging.getLogger(__name__)

DELETE_TAG = "DELETE /v2 manifest by tag"
NATIVE = "native untag"
THROWAWAY = "throwaway manifest"
THROWAWAY_LABEL = "io.ci-env.throwaway"
_OCI_FAMILY = frozenset({OCI_INDEX, OCI_MANIFEST})

Rung = Callable[[str, str, str], str]


def delete_tag(client: RegistryClient, repository: str, tag: str, media_type: str) -> None:
    """Rung 1. UnsupportedError when the registry refuses tag deletes."""
    response = client.request(
        "DELETE",
        f"/v2/{repository}/manifests/{tag}",
        repository=repository,
        what=f"DELETE manifest by tag {repository}:{tag}",
        ok=(400, 404, 405, 501),
    )
    if response.status_code == 202 or response.ok:
        return
    if response.status_code == 404 and client.head(repository, tag) is None:
        raise NotFoundError(f"tag {repository}:{tag} is already gone", status=404)
    raise UnsupportedError(
        f"{client.registry} refuses tag deletes ({response.status_code})",
        status=response.status_code,
    )


def throwaway_manifest(repository: str, tag: str, media_type: str) -> tuple[bytes, str, bytes]:
    """(config blob, manifest type, manifest), unique per call, in `media_type`'s family."""
    oci = media_type in _OCI_FAMILY
    label = f"{repository}:{tag} {uuid.uuid4()}"
    config = json.dumps(
        {
            "architecture": "",
            "os": "",
            "config": {"Labels": {THROWAWAY_LABEL: label}},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        sort_keys=True,
    ).encode()
    manifest_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    body = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
            "digest": sha256_digest(config),
            "size": len(config),
        },
        "layers": [],
    }
    return config, manifest_type, json.dumps(body, sort_keys=True).encode()


def untag_by_throwaway(client: RegistryClient, repository: str, tag: str, media_type: str) -> None:
    """Rung 3: move the tag to a throwaway manifest, delete that, check the tag is gone."""
    config, manifest_type, body = throwaway_manifest(repository, tag, media_type)
    client.upload_blob(repository, config)
    pushed = client.put_manifest(repository, tag, body, manifest_type)
    try:
        client.delete_manifest(repository, pushed)
    except NotFoundError:
        pass
    now = client.head(repository, tag)
    if now is None:
        return
    if now.digest == pushed:
        raise UnsupportedError(
            f"{client.registry} kept tag {repository}:{tag} after deleting its throwaway manifest",
            "enable manifest deletes on the registry, or choose its native kind",
        )
    raise RegistryError(
        f"tag {repository}:{tag} was pushed again while it was being removed (now {now.digest})",
        "nothing was deleted; run cleanup again later",
    )


def still_at(client: RegistryClient, repository: str, tag: str, digest: str) -> Descriptor:
    """The tag's current head, checked by `ensure_still_at` to point at the planned `digest`."""
    current = client.head(repository, tag)
    ensure_still_at(repository, tag, digest, current.digest if current else None)
    assert current is not None  # ensure_still_at raised otherwise
    return current


class UntagLadder:
    """Runs the rungs in order; remembers the first that worked (thread-safe)."""

    def __init__(
        self,
        client: RegistryClient,
        native: Callable[[str, str], str] | None = None,
        *,
        try_delete_tag: bool = True,
    ) -> None:
        self.client = client
        rungs: list[tuple[str, Callable[[str, str, str], str | None]]] = []
        if try_delete_tag:
            rungs.append((DELETE_TAG, lambda r, t, m: delete_tag(client, r, t, m)))
        if native is not None:
            rungs.append((NATIVE, lambda r, t, m: native(r, t)))
        rungs.append((THROWAWAY, lambda r, t, m: untag_by_throwaway(client, r, t, m)))
        self.rungs = rungs
        self._start = 0
        self._worked = False
        self._lock = threading.Lock()

    @property
    def working(self) -> str | None:
        """Name of the rung that worked (memoised), None before any untag succeeded."""
        with self._lock:
            return self.rungs[self._start][0] if self._worked else None

    def untag(self, repository: str, tag: str, digest: str) -> str:
        current = still_at(self.client, repository, tag, digest)
        with self._lock:
            start = self._start
        reasons: list[str] = []
        for index in range(start, len(self.rungs)):
            name, rung = self.rungs[index]
            try:
                method = rung(repository, tag, current.media_type)
            except UnsupportedError as error:
                logger.debug("untag %s:%s: %s unsupported: %s", repository, tag, name, error)
                reasons.append(f"{name}: {error.message}")
                continue
            with self._lock:
                self._start, self._worked = index, True
            return method or name
        raise UnsupportedError(
            f"cannot remove tag {repository}:{tag} without deleting the other tags on {digest}"
            f" ({'; '.join(reasons)})",
            "enable manifest deletes on the registry or choose its native kind with "
            "--repo-container-registry; the tag was left in place",
        )
