"""Files and directories only their owner may read or change, whatever the umask.

A plan drives deletions and a report or job directory may hold what a registry said about
private images: another local user must not rewrite or read them. Files are created 0600 and
directories 0700 (and set so again: an existing file keeps its mode on `open`, and `mkdir`'s
mode is filtered through the umask, which a CI image may set to 000).
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def write_text(path: str | os.PathLike[str], text: str, *, append: bool = False) -> None:
    """Write (or append to) `path` as a 0600 file. Appending keeps an existing file's mode:
    the file belongs to whoever made it (e.g. the runner's `$GITHUB_STEP_SUMMARY`)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if not append:
            os.fchmod(out.fileno(), FILE_MODE)
        out.write(text)


def make_dirs(path: str | os.PathLike[str]) -> Path:
    """`mkdir -p` where every directory it creates is 0700; existing ones are left alone."""
    target = Path(path)
    missing: list[Path] = []
    for candidate in (target, *target.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made concurrently: someone else's choice of mode
        directory.chmod(DIR_MODE)
    return target
