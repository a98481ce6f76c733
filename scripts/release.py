#!/usr/bin/env python3
"""Version bookkeeping for a release (README: Releasing); standard library only, so the release
workflow runs it before anything is installed.

  bump X.Y.Z          set the version everywhere a user's line names it, open its CHANGELOG section
  check vX.Y.Z        the tag, ci_env.__version__, CHANGELOG and every pinned line agree; prints
                      `version=X.Y.Z` (for $GITHUB_OUTPUT); exit 1 saying what disagrees
  pin X.Y.Z DIGEST    the Action commit: action.yml runs the published image by digest instead
                      of building the Dockerfile, and the GitLab templates pin that digest too
  notes X.Y.Z         the CHANGELOG section of X.Y.Z (the GitHub release's notes)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "ghcr.io/ci-env/ci-env"
REPO = "ci-env/ci-env"  # uses: REPO@vX.Y.Z
VERSION = re.compile(r"\d+\.\d+\.\d+")
INIT = "ci_env/__init__.py"
# Files whose user-facing lines carry the version.
PINNED = (
    "README.md",
    "gitlab-ci-template.yml",
    "templates/*/template.yml",
    "templates/*/README.md",
)
# The lines that name a version; the version is each pattern's last group.
PATTERNS = (
    re.compile(re.escape(IMAGE) + r":(\d+\.\d+\.\d+)(?!\d)"),  # the image
    re.compile(re.escape(REPO) + r"@v(\d+\.\d+\.\d+)(?!\d)"),  # uses:
    re.compile(r"/ci-env/([\w-]+)@(\d+\.\d+\.\d+)(?!\d)"),  # include: component:
    re.compile(r"ci-env(\[[\w,]+\])?==(\d+\.\d+\.\d+)(?!\d)"),  # pip install
)


class ReleaseError(Exception):
    pass


def files() -> list[Path]:
    return sorted({path for pattern in PINNED for path in ROOT.glob(pattern)})


def current() -> str:
    match = re.search(r'__version__ = "([^"]+)"', (ROOT / INIT).read_text())
    if not match:
        raise ReleaseError(f"{INIT} has no __version__")
    return match.group(1)


def versions_in(text: str) -> set[str]:
    found = set()
    for pattern in PATTERNS:
        for match in pattern.finditer(text):
            found.add(match.group(match.lastindex or 1))
    return found


def replace_versions(text: str, version: str) -> str:
    text = PATTERNS[0].sub(f"{IMAGE}:{version}", text)
    text = PATTERNS[1].sub(f"{REPO}@v{version}", text)
    text = PATTERNS[2].sub(lambda m: f"/ci-env/{m.group(1)}@{version}", text)
    return PATTERNS[3].sub(lambda m: f"ci-env{m.group(1) or ''}=={version}", text)


def notes(version: str) -> str:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    match = re.search(rf"^## {re.escape(version)}\b.*?\n(.*?)(?=^## |\Z)", changelog, re.M | re.S)
    if not match or not match.group(1).strip():
        raise ReleaseError(f"CHANGELOG.md has no section '## {version}'")
    return match.group(1).strip() + "\n"


def bump(version: str) -> None:
    if not VERSION.fullmatch(version):
        raise ReleaseError(f"{version!r} is not X.Y.Z")
    init = ROOT / INIT
    init.write_text(
        re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text())
    )
    for path in files():
        path.write_text(replace_versions(path.read_text(), version))
    changelog = ROOT / "CHANGELOG.md"
    text = changelog.read_text()
    if f"## {version}" not in text:
        text = text.replace("## Unreleased\n", f"## Unreleased\n\n## {version}\n", 1)
        changelog.write_text(text)


def check(tag: str) -> str:
    version = tag.removeprefix("v")
    problems = []
    if not tag.startswith("v") or not VERSION.fullmatch(version):
        problems.append(f"tag {tag!r} is not vX.Y.Z")
    if current() != version:
        problems.append(f"{INIT} says {current()}, the tag says {version}")
    try:
        notes(version)
    except ReleaseError as error:
        problems.append(str(error))
    for path in files():
        stale = versions_in(path.read_text()) - {version}
        if stale:
            problems.append(f"{path.relative_to(ROOT)} names {', '.join(sorted(stale))}")
    if problems:
        raise ReleaseError("; ".join(problems) + " (run scripts/release.py bump X.Y.Z)")
    return version


def pin(version: str, digest: str) -> None:
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ReleaseError(f"{digest!r} is not a sha256 digest")
    action = ROOT / "action.yml"
    text, count = re.subn(
        r"(?m)^  image: Dockerfile$",
        f"  image: docker://{IMAGE}:{version}@{digest}",
        action.read_text(),
    )
    if count != 1:
        raise ReleaseError("action.yml has no `image: Dockerfile` line to pin")
    action.write_text(text)
    templates = [ROOT / "gitlab-ci-template.yml", *ROOT.glob("templates/*/template.yml")]
    for path in (path for path in templates if path.exists()):
        pinned = re.sub(
            re.escape(f"{IMAGE}:{version}") + r"(?!@)",
            f"{IMAGE}:{version}@{digest}",
            path.read_text(),
        )
        path.write_text(pinned)


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["bump", version]:
                bump(version)
            case ["check", tag]:
                print(f"version={check(tag)}")
            case ["pin", version, digest]:
                pin(version, digest)
            case ["notes", version]:
                sys.stdout.write(notes(version))
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
