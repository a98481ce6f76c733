"""The README stays true to the code: the generated registry table matches the backends."""

from __future__ import annotations

from pathlib import Path

from scripts import registry_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_registry_table_matches_the_backends() -> None:
    text = README.read_text()
    assert registry_table.BEGIN in text
    assert registry_table.END in text
    assert registry_table.with_table(text) == text, "run: python scripts/registry_table.py --write"


def test_every_registered_kind_is_in_the_table() -> None:
    from ci_env.registries import KINDS  # noqa: PLC0415

    text = README.read_text()
    for kind in KINDS:
        assert f"(`{kind}`)" in text, kind
