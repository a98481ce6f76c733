"""ci_env.registries: every kind in KINDS imports, a base install (no optional SDK) imports
them all, and a listed module that cannot be imported is an error naming the kind, never a
silent fallback to the plain Registry API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ci_env import cli, lazy
from ci_env.errors import CiEnvError
from ci_env.registries import KINDS, KindModuleError, backend_class
from ci_env.registries.detect import detect, loaded_kinds
from scripts import registry_table

ROOT = Path(__file__).resolve().parents[2]
TYPO = "ci_env.registries.quya"


@pytest.fixture
def misspelt_quay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "quay", TYPO)


@pytest.mark.usefixtures("misspelt_quay")
def test_a_kind_whose_module_is_missing_is_an_error_naming_it() -> None:
    with pytest.raises(KindModuleError) as caught:
        backend_class("quay")
    assert isinstance(caught.value, CiEnvError)
    assert "'quay'" in caught.value.message
    assert TYPO in caught.value.message
    assert caught.value.kind == "quay"


@pytest.mark.usefixtures("misspelt_quay")
def test_a_broken_kind_is_not_skipped_by_detection_or_the_table() -> None:
    with pytest.raises(KindModuleError, match="quay"):
        loaded_kinds()
    with pytest.raises(KindModuleError, match="quay"):
        detect("quay.io")  # today's code answered "default" here
    with pytest.raises(KindModuleError, match="quay"):
        registry_table.table()


@pytest.mark.usefixtures("misspelt_quay")
def test_the_cli_reports_a_broken_kind_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["detect", "quay.io/acme/app"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: registry kind 'quay'")
    assert TYPO in err
    assert "Traceback" not in err


def test_a_missing_optional_sdk_inside_a_backend_module_names_its_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "eager_backend_for_test.py").write_text("import gitlab.v4.nonexistent_sdk\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(KINDS, "gitlab", "eager_backend_for_test")
    with pytest.raises(lazy.MissingExtraError) as caught:
        backend_class("gitlab")
    assert caught.value.extra == "gitlab"


_BASE_ONLY = textwrap.dedent(
    """
    import importlib.abc, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname.partition(".")[0] in {sdks!r}:
                raise ModuleNotFoundError(f"No module named {{fullname!r}}", name=fullname)
            return None

    sys.meta_path.insert(0, Blocker())
    from ci_env.registries import KINDS
    from ci_env.registries.detect import loaded_kinds
    assert [kind for kind, _ in loaded_kinds()] == list(KINDS)
    from ci_env import cli, lazy
    cli.build_parser()
    try:
        lazy.module("gitlab").Gitlab
    except lazy.MissingExtraError as error:
        print(error.render())
    """
)


def test_a_base_install_imports_every_backend_module() -> None:
    script = _BASE_ONLY.format(sdks=set(lazy.EXTRAS))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'ci-env[gitlab]'" in done.stdout
