"""ci_env.lazy: deferred imports, and a missing optional SDK named by its pip extra."""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

from ci_env import lazy
from ci_env.errors import UsageError


class Blocker(importlib.abc.MetaPathFinder):
    """Makes `names` (and their submodules) uninstalled for this test."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@pytest.fixture
def without_sdks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(sys.modules):
        if name.partition(".")[0] in {"boto3", "botocore", "gitlab"} or name.endswith("._aws"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Blocker("boto3", "botocore", "gitlab"), *sys.meta_path])
    yield


@pytest.mark.usefixtures("without_sdks")
def test_a_missing_sdk_module_names_its_extra_on_first_use() -> None:
    gitlab = lazy.module("gitlab")  # importing the backend module still works
    with pytest.raises(lazy.MissingExtraError) as caught:
        _ = gitlab.Gitlab
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2
    assert "ci-env[gitlab]" in caught.value.render()


@pytest.mark.usefixtures("without_sdks")
def test_a_module_that_imports_a_missing_sdk_names_its_extra_every_time() -> None:
    aws = lazy.module("ci_env.registries._aws")
    for _ in range(2):
        with pytest.raises(lazy.MissingExtraError, match="boto3") as caught:
            _ = aws.client
        assert caught.value.extra == "aws"


def test_an_installed_module_loads_on_first_use() -> None:
    module = lazy.module("json")
    assert module.dumps([1]) == "[1]"


def test_a_missing_module_that_is_no_extra_is_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        lazy.module("no_such_module_of_ci_env")


def test_threads_that_use_a_module_first_at_once_all_see_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # importlib's LazyLoader (3.11) let the second thread see a half-run module.
    (tmp_path / "slow_sdk_for_test.py").write_text("import time\ntime.sleep(0.3)\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_sdk_for_test", raising=False)
    slow = lazy.module("slow_sdk_for_test")
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: slow.VALUE, range(8)))
    assert values == [42] * 8
