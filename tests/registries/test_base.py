"""The `Backend` defaults a kind inherits when it has no Docker Registry API of its own."""

from __future__ import annotations

from ci_env.options import BackendOptions
from ci_env.registries import backend_class
from ci_env.registry.client import RegistryClient


def test_a_native_kind_is_probed_through_a_registry_client_of_its_own() -> None:
    backend = backend_class("quay")("quay.example.test", BackendOptions())
    client = backend.registry_api()
    assert isinstance(client, RegistryClient)
    assert client.registry == "quay.example.test"
    assert backend.dry_delete("org/app") == (
        "not checked dry: deletes go through " + backend.description.delete
    )
