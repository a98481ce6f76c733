"""How `ci-env env` writes the job's variables: shell, powershell, env-file, github, dotenv, json.

Values are always quoted for the shells that will read them (werf writes `export K="V"` without
escaping, so a `"` or `$` in a value breaks or runs code). Formats that cannot carry a newline
(env-file, dotenv) refuse one instead of writing a file that means something else.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import assert_never

from ci_env.errors import UsageError
from ci_env.providers.base import Variable


class Format(enum.StrEnum):
    SHELL = "shell"
    POWERSHELL = "powershell"
    ENV_FILE = "env-file"
    GITHUB = "github"
    DOTENV = "dotenv"
    JSON = "json"


@dataclass(frozen=True)
class Entry:
    variable: Variable
    skip: str = ""  # why it is not exported, e.g. "CIENV_REPO is already set"

    @property
    def exported(self) -> bool:
        return not self.skip


def _twins(name: str) -> tuple[str, ...]:
    """`CIENV_X` is also set when werf's `WERF_X` is (ci-env reads it as a fallback)."""
    if name.startswith("CIENV_"):
        return (name, "WERF_" + name.removeprefix("CIENV_"))
    return (name,)


def select(variables: Iterable[Variable], env: Mapping[str, str]) -> list[Entry]:
    """Skip variables the job already sets, except `always` ones (the Docker config)."""
    entries = []
    for variable in variables:
        already = next((n for n in _twins(variable.name) if env.get(n)), None)
        if already and not variable.always:
            entries.append(Entry(variable, skip=f"{already} is already set"))
        else:
            entries.append(Entry(variable))
    return entries


def shell_quote(value: str) -> str:
    """POSIX single quotes: nothing inside is expanded; `'` becomes `'"'"'`."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


# PowerShell ends a verbatim string at any of these, not only at ASCII `'` (its tokenizer's
# IsSingleQuote: U+0027, U+2018, U+2019, U+201A, U+201B); doubled, each stands for itself.
_POWERSHELL_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def powershell_quote(value: str) -> str:
    """PowerShell verbatim string: every single-quote character is doubled."""
    for quote in _POWERSHELL_QUOTES:
        value = value.replace(quote, quote * 2)
    return "'" + value + "'"


def _single_line(entry: Entry, fmt: Format) -> str:
    if "\n" in entry.variable.value or "\r" in entry.variable.value:
        raise UsageError(
            f"{entry.variable.name} has a multi-line value, which {fmt} files cannot hold",
            "use --format shell, json or github",
        )
    return entry.variable.value


def _commented(entries: list[Entry], line: str, fmt: Format) -> list[str]:
    """Lines for formats with `#` comments: section headers and skip notes."""
    out: list[str] = []
    section = ""
    for entry in entries:
        variable = entry.variable
        if variable.comment and variable.comment != section:
            section = variable.comment
            out.append(f"# {section}")
        if entry.skip:
            out.append(f"# skip {variable.name} ({entry.skip})")
            continue
        if fmt is Format.SHELL:
            out.append(line.format(name=variable.name, value=shell_quote(variable.value)))
        elif fmt is Format.POWERSHELL:
            out.append(line.format(name=variable.name, value=powershell_quote(variable.value)))
        else:
            out.append(line.format(name=variable.name, value=_single_line(entry, fmt)))
    return out


def _github(entries: list[Entry]) -> list[str]:
    """`$GITHUB_ENV` multi-line syntax: `NAME<<DELIM`, value, `DELIM`, with a delimiter that
    cannot occur in the value (the runner rejects a value containing it)."""
    out = []
    for entry in entries:
        if not entry.exported:
            continue
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in entry.variable.value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        out += [f"{entry.variable.name}<<{delimiter}", entry.variable.value, delimiter]
    return out


def render(fmt: Format, entries: list[Entry]) -> str:
    """The whole text for `fmt`, ending with a newline (empty string when nothing to write)."""
    if fmt is Format.SHELL:
        lines = _commented(entries, "export {name}={value}", fmt)
    elif fmt is Format.POWERSHELL:
        lines = _commented(entries, "$Env:{name} = {value}", fmt)
    elif fmt is Format.ENV_FILE:
        lines = _commented(entries, "{name}={value}", fmt)
    elif fmt is Format.DOTENV:
        # GitLab's dotenv report allows no comments or empty lines and keeps quotes literally.
        lines = [f"{e.variable.name}={_single_line(e, fmt)}" for e in entries if e.exported]
    elif fmt is Format.GITHUB:
        lines = _github(entries)
    elif fmt is Format.JSON:
        data = {e.variable.name: e.variable.value for e in entries if e.exported}
        return json.dumps(data, indent=2) + "\n"
    else:
        assert_never(fmt)
    return "".join(line + "\n" for line in lines)
