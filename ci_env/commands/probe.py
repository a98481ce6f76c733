"""`ci-env probe REPO [--write]`: check live what the kit can do in one repository.

Read-only by default: authenticate, list, read a manifest, and a dry delete — `DELETE` of a
digest that cannot exist, which tells "deletes allowed" (404 MANIFEST_UNKNOWN) from "denied"
(401/403) and "disabled" (405) without touching anything. With `--write`: push an OCI image
manifest to two unique scratch tags, remove one tag with the untag method cleanup would use
(checking the other survives), push an OCI artifact referring to it, then delete both.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ci_env import reference, secrets, untrusted
from ci_env.backend_options import add_backend_arguments, backend_options, choose_kind
from ci_env.errors import AuthError, CiEnvError, NotFoundError, RegistryError
from ci_env.oci import OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST, new_oci_manifest
from ci_env.registries.base import Backend
from ci_env.registry.client import RegistryClient

NAME = "probe"
HELP = "check live what ci-env can do in a repository (read-only unless --write)"
DESCRIPTION = """\
Check one repository against the registry table: can ci-env authenticate, list tags, read
manifests and delete (a dry DELETE of a digest that cannot exist)? With --write it also pushes
an OCI manifest and an OCI artifact to unique scratch tags (ci-env-probe-*), removes one tag
with the untag method cleanup uses, and deletes everything it pushed. Exit 0 when every check
passes, 3 when authentication fails, 1 otherwise.

examples:
  ci-env probe registry.example.com/team/app
  ci-env probe ghcr.io/acme/app --write --json
"""

ARTIFACT_TYPE = "application/vnd.ci-env.probe.v1+json"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="repository address, e.g. ghcr.io/acme/app")
    parser.add_argument("--write", action="store_true", help="also push and delete scratch tags")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--probe", action="store_true", help="ask an unknown registry what kind it is"
    )
    add_backend_arguments(parser)


class Prober:
    """Runs the checks in order; a failed authentication skips the rest."""

    def __init__(self, backend: Backend, client: RegistryClient, repository: str) -> None:
        self.backend = backend
        self.client = client
        self.repository = repository
        self.checks: list[Check] = []
        self.auth_failed = False
        self.scratch = f"ci-env-probe-{uuid.uuid4().hex[:12]}"
        self.image: str | None = None
        self.artifact: str | None = None

    def check(self, name: str, action: Callable[[], str]) -> bool:
        if self.auth_failed:
            self.checks.append(Check(name, False, "skipped: authentication failed"))
            return False
        try:
            detail = action()
        except CiEnvError as error:
            self.auth_failed = self.auth_failed or isinstance(error, AuthError)
            self.checks.append(Check(name, False, secrets.redact(error.render())))
            return False
        self.checks.append(Check(name, True, secrets.redact(detail)))
        return True

    def authenticate(self) -> str:
        self.client.ping()
        return "GET /v2/ accepted the credentials"

    def list(self) -> str:
        images = self.backend.list_images(self.repository)
        tags = sum(len(image.tags) for image in images)
        return f"{tags} tag(s) on {len(images)} digest(s)"

    def read(self) -> str:
        images = [image for image in self.backend.list_images(self.repository) if image.tags]
        if not images:
            return "no tags to read (empty repository)"
        manifest = self.backend.manifest(self.repository, images[0].digest)
        return f"{images[0].tags[0]} -> {manifest.media_type}"

    def dry_delete(self) -> str:
        return self.backend.dry_delete(self.repository)

    def push_image(self) -> str:
        config = json.dumps({"config": {"Labels": {"io.ci-env.probe": self.scratch}}}).encode()
        self.client.upload_blob(self.repository, config)
        body = new_oci_manifest(config, OCI_CONFIG)
        self.image = self.client.put_manifest(self.repository, self.scratch, body, OCI_MANIFEST)
        self.client.put_manifest(self.repository, self.scratch + "-keep", body, OCI_MANIFEST)
        return f"{self.scratch} and {self.scratch}-keep -> {self.image}"

    def untag(self) -> str:
        assert self.image is not None
        method = self.backend.untag(self.repository, self.scratch, self.image)
        if self.backend.resolve(self.repository, self.scratch) is not None:
            raise RegistryError(f"{self.scratch} is still there after the untag")
        if self.backend.resolve(self.repository, self.scratch + "-keep") != self.image:
            raise RegistryError(f"removing {self.scratch} also removed {self.scratch}-keep")
        return f"removed {self.scratch} by {method}; {self.scratch}-keep kept"

    def push_artifact(self) -> str:
        assert self.image is not None
        empty = b"{}"
        self.client.upload_blob(self.repository, empty)
        data = json.dumps({"probe": self.scratch}).encode()
        layer = self.client.upload_blob(self.repository, data)
        body = json.loads(new_oci_manifest(empty, OCI_EMPTY, ARTIFACT_TYPE))
        body["layers"] = [{"mediaType": ARTIFACT_TYPE, "digest": layer, "size": len(data)}]
        subject = self.client.head(self.repository, self.image)
        size = subject.size if subject else 0
        body["subject"] = {"mediaType": OCI_MANIFEST, "digest": self.image, "size": size}
        raw = json.dumps(body, sort_keys=True).encode()
        tag = self.scratch + "-artifact"
        self.artifact = self.client.put_manifest(self.repository, tag, raw, OCI_MANIFEST)
        return f"{tag} -> {self.artifact} (artifactType {ARTIFACT_TYPE})"

    def delete(self) -> str:
        done = [self._delete(digest) for digest in (self.artifact, self.image) if digest]
        if self.backend.resolve(self.repository, self.scratch + "-keep") is not None:
            raise RegistryError(f"{self.scratch}-keep is still there after deleting its digest")
        self.image = self.artifact = None
        return f"deleted {len(done)} digest(s) by {done[-1] if done else '-'}"

    def _delete(self, digest: str) -> str:
        try:
            return self.backend.delete(self.repository, digest)
        except NotFoundError:
            return "already gone"

    def clean_up(self) -> None:
        """Best effort: remove whatever a failed write check left behind."""
        for digest in (self.artifact, self.image):
            if digest:
                try:
                    self._delete(digest)
                except CiEnvError as error:
                    self.checks.append(Check("clean up", False, error.render()))


def render(repo: str, kind: str, checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks)
    lines = [f"{repo} ({kind})"]
    lines += [
        f"  {check.name:<{width}}  {'ok  ' if check.ok else 'FAIL'}  {check.detail}"
        for check in checks
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    ref = reference.parse(args.repo, allow_tag=False)
    options = backend_options(args)
    found = choose_kind(args, ref.registry, options, probe_unknown=args.probe)
    backend = found.backend(ref.registry, options)
    prober = Prober(backend, backend.registry_api(), ref.repository)
    try:
        prober.check("authenticate", prober.authenticate)
        prober.check("list tags", prober.list)
        prober.check("read manifest", prober.read)
        prober.check("delete (dry)", prober.dry_delete)
        if args.write and prober.check("push OCI manifest", prober.push_image):
            prober.check("untag one tag", prober.untag)
            prober.check("push OCI artifact", prober.push_artifact)
            prober.check("delete by digest", prober.delete)
    finally:
        if args.write:
            prober.clean_up()
        backend.close()
    if args.json:
        payload = {
            "repository": ref.name,
            "kind": found.kind,
            "checks": [asdict(c) for c in prober.checks],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(untrusted.guard(render(ref.name, found.kind, prober.checks)))  # registry messages
    if prober.auth_failed:
        return 3
    return 0 if all(check.ok for check in prober.checks) else 1
