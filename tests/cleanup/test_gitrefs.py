"""keep.git's git side against real git: a bare `origin` with dated commits and a clone of it."""

import datetime as dt
import shutil
from pathlib import Path

import pytest

from ci_env.cleanup import gitrefs
from ci_env.cleanup.keep_policies import GitRef, RefKind
from ci_env.errors import UsageError
from tests.support.gitrepo import Origin, git

T = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def hours(n: float) -> dt.datetime:
    return T - dt.timedelta(hours=n)


def test_history_of_a_shallow_single_branch_clone(tmp_path: Path) -> None:
    origin = Origin(tmp_path)
    main = origin.linear("main", ("c1", hours(30)), ("c2", hours(20)), ("c3", hours(10)))
    origin.branch("feature/login", main[1])
    origin.branch("gone", main[0])
    origin.tag("v1.0", main[0], annotated_at=hours(5))
    origin.tag("light", main[1])
    clone = origin.clone(tmp_path / "clone", depth=1, branch="main")
    assert git(clone, "rev-parse", "--is-shallow-repository") == "true"
    origin.delete_branch("gone")  # deleted after the clone: origin no longer has it
    git(clone, "tag", "local-only")  # never pushed: not one of origin's references

    history = gitrefs.read_history(str(clone))

    assert git(clone, "rev-parse", "--is-shallow-repository") == "false"
    assert set(history.refs) == {
        GitRef(RefKind.BRANCH, "main", main[2], hours(10)),
        GitRef(RefKind.BRANCH, "feature/login", main[1], hours(20)),
        GitRef(RefKind.TAG, "v1.0", main[0], hours(5)),  # annotated: the tagger date
        GitRef(RefKind.TAG, "light", main[1], hours(20)),  # lightweight: the commit date
    }
    assert set(history.commits) == set(main)
    assert history.commits[main[2]].parents == (main[1],)
    assert history.commits[main[0]].date == hours(30)


def test_a_shallow_clone_whose_origin_is_gone_is_an_error(tmp_path: Path) -> None:
    origin = Origin(tmp_path)
    origin.linear("main", ("c1", hours(3)), ("c2", hours(2)))
    clone = origin.clone(tmp_path / "clone", depth=1)
    shutil.rmtree(origin.path)
    with pytest.raises(UsageError) as error:
        gitrefs.read_history(str(clone))
    assert "`git fetch origin` failed" in error.value.message
    assert "fetch-depth: 0" in error.value.hint
    assert "GIT_DEPTH: 0" in error.value.hint
    with pytest.raises(UsageError) as shallow:
        gitrefs.read_history(str(clone), fetch=False)
    assert "is shallow" in shallow.value.message


def test_no_origin_is_a_usage_error(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(UsageError) as error:
        gitrefs.read_history(str(tmp_path))
    assert "git fetch origin" in error.value.message


def test_not_a_checkout_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as error:
        gitrefs.read_history(str(tmp_path / "nowhere"))
    assert "git checkout" in error.value.hint


def test_a_token_in_origins_url_never_reaches_the_message(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    url = "http://gitlab-ci-token:glcbt-SECRET@127.0.0.1:9/grp/app.git"  # port 9: refused
    git(tmp_path, "remote", "add", "origin", url)
    with pytest.raises(UsageError) as error:
        gitrefs.read_history(str(tmp_path))
    assert "SECRET" not in error.value.message
    assert "SECRET" not in error.value.hint
    assert "git fetch origin" in error.value.message
    assert "unable to access" in error.value.message
    text = "fatal: unable to access 'https://u:glpat-SECRET@gitlab.example/x/' and ssh://t@h/"
    assert (
        gitrefs.scrub(text)
        == "fatal: unable to access 'https://***@gitlab.example/x/' and ssh://***@h/"
    )
