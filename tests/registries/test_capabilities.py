"""Every registered kind declares the capabilities it implements, and nothing more.

Cleanup and the default backend read the declarations (`batch_size`, `untags_natively`,
`lists_natively`) instead of sniffing overrides; this is the one place that checks they agree.
"""

from __future__ import annotations

import pytest

from ci_env.registries import KINDS, backend_class
from ci_env.registries.base import Backend
from ci_env.registries.default import DistributionBackend


def declarations(backend: type[Backend]) -> list[tuple[str, bool, bool]]:
    """(declaration, what it says, what the class implements) for each that applies."""
    rows = [("batch_size > 1", backend.batch_size > 1, backend.apply is not Backend.apply)]
    if issubclass(backend, DistributionBackend):
        untag = backend.native_untag is not DistributionBackend.native_untag
        listing = backend.list_images is not DistributionBackend.list_images
        rows += [
            ("untags_natively", backend.untags_natively, untag),
            ("lists_natively", backend.lists_natively, listing),
        ]
    return rows


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_declares_what_it_implements(kind: str) -> None:
    rows = declarations(backend_class(kind))
    assert [name for name, declared, implemented in rows if declared != implemented] == []


def test_a_missing_declaration_is_caught() -> None:
    class Undeclared(DistributionBackend):
        def native_untag(self, repository: str, tag: str) -> str:
            return "native"

    assert ("untags_natively", False, True) in declarations(Undeclared)
