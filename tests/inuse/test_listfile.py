"""`--keep-in-use-file`: references one a line or space-separated, comments, bad lines."""

from pathlib import Path

import pytest

from ci_env.errors import UsageError
from ci_env.inuse import listfile
from ci_env.inuse.base import Collector

HEX = "b" * 64


def test_lines_and_jsonpath_output(tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_text(
        "# from kubectl get pods -o jsonpath='{..image}'\n"
        "ghcr.io/acme/app:v1 ghcr.io/acme/app:v2\n"
        "\n"
        f"ghcr.io/acme/app@sha256:{HEX}  # ECS task definition\n"
    )
    found = Collector()
    listfile.collect(str(path), found)
    use = found.result().of("ghcr.io", "acme/app")
    assert use.tags == {"v1": "in use by images.txt line 2", "v2": "in use by images.txt line 2"}
    assert use.digests == {f"sha256:{HEX}": "in use by images.txt line 4"}


def test_a_bad_reference_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_text("ghcr.io/acme/app:v1\nghcr.io/Acme/App\n")
    with pytest.raises(UsageError, match="images.txt line 2: 'ghcr.io/Acme/App'"):
        listfile.collect(str(path), Collector())


def test_a_bare_digest_is_a_usage_error(tmp_path: Path) -> None:
    """`sha256:<hex>` names no repository: accepting it would protect nothing, silently."""
    path = tmp_path / "images.txt"
    path.write_text(f"ghcr.io/acme/app:v1\nsha256:{HEX}\n")
    with pytest.raises(UsageError, match="images.txt line 2: sha256:b+... is a bare digest") as e:
        listfile.collect(str(path), Collector())
    assert "repo@sha256:" in str(e.value.hint)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        listfile.collect(str(tmp_path / "nope.txt"), Collector())
