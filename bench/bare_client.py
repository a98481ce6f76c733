"""The least a requests-based client can send for the by-name case, and nothing more.

What `ci-env cleanup --delete-tag PATTERN --parallel P` must send on the Docker Registry API,
without anything else ci-env does (settings, policy, graph, cache, progress, report, retries):
one challenge and one token (scope pull,push,delete), the `tags/list` pages, one GET per tag
(its body hashed for the digest, since a kept tag sharing a doomed digest must protect it), one
re-listing before deleting (as ci-env re-checks), then one DELETE per doomed digest; GETs and
DELETEs on P threads with a pooled session each. `cleanup_network.py` times it through the same
proxy as ci-env: the time any client built on requests needs here, measured in the same run.

Usage: BARE_USER=... BARE_PASSWORD=... python bench/bare_client.py HOST REPOSITORY PATTERN P
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import requests

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_local = threading.local()


def session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    found: requests.Session = _local.session
    return found


def token(base: str, repository: str) -> str:
    """The Bearer challenge's realm and service, then a token for the scope (Basic auth)."""
    challenge = requests.get(f"{base}/v2/", timeout=30).headers["WWW-Authenticate"]
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    scope = f"repository:{repository}:pull,push,delete"
    auth = (os.environ["BARE_USER"], os.environ["BARE_PASSWORD"])
    query = {"service": params["service"], "scope": scope}
    answer = requests.get(params["realm"], params=query, auth=auth, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["token"])


def tags(base: str, repository: str, headers: dict[str, str]) -> list[str]:
    names: list[str] = []
    url: str | None = f"{base}/v2/{repository}/tags/list?n=1000"
    while url:
        page = requests.get(url, headers=headers, timeout=30)
        page.raise_for_status()
        names += page.json().get("tags") or []
        link = page.links.get("next", {}).get("url")
        url = urljoin(url, link) if link else None
    return names


def main() -> None:
    host, repository, pattern, parallel = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    base = f"http://{host}"
    headers = {"Authorization": f"Bearer {token(base, repository)}"}
    doomed_tag = re.compile(pattern)

    def digest_of(tag: str) -> tuple[str, str]:
        url = f"{base}/v2/{repository}/manifests/{tag}"
        answer = session().get(url, headers={**headers, "Accept": ACCEPT}, timeout=30)
        answer.raise_for_status()
        return tag, "sha256:" + hashlib.sha256(answer.content).hexdigest()

    def delete(digest: str) -> None:
        url = f"{base}/v2/{repository}/manifests/{digest}"
        session().delete(url, headers=headers, timeout=30).raise_for_status()

    with ThreadPoolExecutor(parallel) as pool:
        found = dict(pool.map(digest_of, tags(base, repository, headers)))
        kept = {d for t, d in found.items() if not doomed_tag.fullmatch(t)}
        doomed = sorted({d for t, d in found.items() if doomed_tag.fullmatch(t)} - kept)
        tags(base, repository, headers)  # the re-check before deleting
        list(pool.map(delete, doomed))


if __name__ == "__main__":
    main()
