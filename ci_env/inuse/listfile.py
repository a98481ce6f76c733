"""`--keep-in-use-file`: image references from a file (kubectl jsonpath output, ECS task
definitions, Nomad jobs, Helm values flattened by a script).

References are separated by whitespace or newlines (`kubectl -o jsonpath='{..image}'` prints
them on one line); `#` starts a comment. A token that is not an image reference is a usage
error naming the line: a typo must not silently protect nothing.
"""

from __future__ import annotations

from pathlib import Path

from ci_env.errors import UsageError
from ci_env.inuse.base import Collector, normalise


def collect(path: str, into: Collector) -> None:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problem = getattr(error, "strerror", None) or "not UTF-8 text"
        raise UsageError(
            f"--keep-in-use-file: cannot read {path!r} ({problem})", "check the path"
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        for token in line.split("#", 1)[0].split():
            where = f"--keep-in-use-file {path} line {number}"
            if token.startswith("sha256:"):  # names no repository: it would protect nothing
                raise UsageError(
                    f"{where}: {token[:19]}... is a bare digest",
                    "write the repository with it: repo@sha256:<hex>",
                )
            ref = normalise(token)
            if ref is None:
                raise UsageError(
                    f"{where}: {token!r} is not an image reference",
                    "write one reference a line, e.g. ghcr.io/acme/app:1.2 or repo@sha256:<hex>",
                )
            into.add(ref, f"{Path(path).name} line {number}")
    into.sources.append(path)
