"""Print the per-registry Markdown table of docs/registries.md from each backend's `description`.

Usage: python scripts/registry_table.py > /tmp/table.md  (the docs embed its output verbatim,
so the table never drifts from the code).
"""

from __future__ import annotations

from ci_env.registries import KINDS, backend_class
from ci_env.registries.base import Backend


def _backends() -> list[tuple[str, type[Backend]]]:
    found = []
    for kind in KINDS:
        try:
            found.append((kind, backend_class(kind)))
        except ImportError:  # a kind whose module is not written yet
            continue
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table() -> str:
    rows = [
        "| Registry (kind) | Login | OCI artifacts | Cleanup | Listing | Untag / delete | "
        "Cleanup credentials |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, backend in _backends():
        info = backend.description
        options = ", ".join(f"`--repo-{option.name}`" for option in backend.native_options)
        creds = info.cleanup_credentials + (f" (options: {options})" if options else "")
        rows.append(
            "| "
            + " | ".join(
                _cell(value)
                for value in (
                    f"{info.title} (`{kind}`)",
                    info.login,
                    info.oci_artifacts,
                    info.cleanup,
                    info.listing,
                    f"untag: {info.untag}; delete: {info.delete}",
                    creds,
                )
            )
            + " |"
        )
    return "\n".join(rows)


def limitations() -> str:
    lines = []
    for _kind, backend in _backends():
        info = backend.description
        lines.extend(f"- **{info.title}**: {item}" for item in info.limitations)
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
    print()
    print("Known limitations:\n")
    print(limitations())
