"""The four images every native-kind scenario starts from, and the registry's tags read back
(shared by tests/registries/test_cli_native.py and tests/support/native_scenarios.py)."""

from __future__ import annotations

from tests.support.images import list_tags, push_image, tag
from tests.support.registry import LocalRegistry


def seed(reg: LocalRegistry, repo: str) -> dict[str, str]:
    """The four images of the scenario in the real registry; tag -> digest."""
    x = push_image(reg, repo, "v1", seed=f"{repo}-x", via="http")
    tag(reg, repo, "v1", "pr-1")
    y = push_image(reg, repo, "pr-2", seed=f"{repo}-y", via="http")
    z = push_image(reg, repo, "pr-3", seed=f"{repo}-z", via="http")
    tag(reg, repo, "pr-3", "pr-4")
    w = push_image(reg, repo, "main", seed=f"{repo}-w", via="http")
    return {"v1": x, "pr-1": x, "pr-2": y, "pr-3": z, "pr-4": z, "main": w}


def real_state(reg: LocalRegistry, repo: str) -> dict[str, str]:
    session = reg.session()
    found = {}
    for name in list_tags(reg, repo):
        head = session.head(
            f"/v2/{repo}/manifests/{name}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        found[name] = head.headers["Docker-Content-Digest"]
    return found
