"""Variable output formats, read back by the programs that consume them."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from ci_env import formats
from ci_env.errors import UsageError
from ci_env.formats import Entry, Format
from ci_env.providers.base import Variable

NASTY = 'it\'s $HOME `id` "quoted" \\ back; echo pwned'


def _entries(*variables: Variable) -> list[Entry]:
    return [Entry(v) for v in variables]


def test_shell_output_round_trips_through_sh() -> None:
    text = formats.render(
        Format.SHELL,
        _entries(Variable("DOCKER_CONFIG", "/tmp/x y", "DOCKER CONFIG"), Variable("V", NASTY)),
    )
    assert text.startswith("# DOCKER CONFIG\nexport DOCKER_CONFIG='/tmp/x y'\n")
    script = text + 'printf "%s|%s" "$DOCKER_CONFIG" "$V"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == f"/tmp/x y|{NASTY}"


def test_skipped_variables_are_comments() -> None:
    env = {"WERF_REPO": "registry.example/app", "DOCKER_CONFIG": "/old"}
    variables = [
        Variable("DOCKER_CONFIG", "/new", "DOCKER CONFIG", always=True),
        Variable("CIENV_REPO", "ghcr.io/a/b", "REPO"),
    ]
    entries = formats.select(variables, env)
    assert entries[0].exported
    assert not entries[1].exported
    text = formats.render(Format.SHELL, entries)
    assert "export DOCKER_CONFIG='/new'" in text
    assert "# skip CIENV_REPO (WERF_REPO is already set)" in text
    assert "ghcr.io/a/b" not in formats.render(Format.JSON, entries)


def test_powershell_quotes_are_doubled() -> None:
    text = formats.render(Format.POWERSHELL, _entries(Variable("V", "a'b $x")))
    assert text == "$Env:V = 'a''b $x'\n"


@pytest.mark.parametrize("quote", ["\u2018", "\u2019", "\u201a", "\u201b"])
def test_powershell_typographic_quotes_are_doubled_too(quote: str) -> None:
    # PowerShell ends a verbatim string at any of these: undoubled, the rest runs as code.
    value = f"reg/app{quote}; Remove-Item -Recurse ~; {quote}"
    text = formats.render(Format.POWERSHELL, _entries(Variable("V", value)))
    assert text == f"$Env:V = 'reg/app{quote * 2}; Remove-Item -Recurse ~; {quote * 2}'\n"


@pytest.mark.parametrize("fmt", [Format.ENV_FILE, Format.DOTENV])
def test_line_formats_refuse_newlines(fmt: Format) -> None:
    assert formats.render(fmt, _entries(Variable("A", "b c"))) == "A=b c\n"
    with pytest.raises(UsageError):
        formats.render(fmt, _entries(Variable("A", "line1\nline2")))


def test_dotenv_has_no_comments_or_skips() -> None:
    entries = [Entry(Variable("A", "1", "SECTION")), Entry(Variable("B", "2"), skip="set")]
    assert formats.render(Format.DOTENV, entries) == "A=1\n"
    assert formats.render(Format.ENV_FILE, entries) == "# SECTION\nA=1\n# skip B (set)\n"


def test_github_env_uses_a_delimiter_not_in_the_value() -> None:
    text = formats.render(Format.GITHUB, _entries(Variable("M", "one\ntwo"), Variable("S", "x")))
    match = re.fullmatch(r"M<<(\S+)\none\ntwo\n\1\nS<<(\S+)\nx\n\2\n", text)
    assert match
    assert match.group(1) != match.group(2)
    assert match.group(1).startswith("ghadelimiter_")


def test_json_is_a_plain_object() -> None:
    text = formats.render(Format.JSON, _entries(Variable("A", NASTY)))
    assert json.loads(text) == {"A": NASTY}
