"""The three report formats over one run: a failure, a skip, a closed repository, a secret."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ci_env import secrets
from ci_env.cleanup.apply import Outcome, Status
from ci_env.cleanup.plan import Action, Plan, PlanItem, RepoPlan
from ci_env.registries.base import Operation, OpKind
from ci_env.reports import base as reports
from tests.support.fake_backend import digest
from tests.support.tools import check_jsonschema

WHEN = datetime(2025, 1, 1, tzinfo=UTC)
SECRET = "s3cr3t-token-value"


def run_report(dry_run: bool = False) -> reports.RunReport:
    items = (
        PlanItem(digest("a"), "v1", Action.KEEP, "kept: matches keep.tags 'v.*'"),
        PlanItem(digest("a"), "pr-1", Action.UNTAG, "untagged: still needed by kept tag v1"),
        PlanItem(digest("b"), "pr-2", Action.DELETE, "deleted: older than 30d", WHEN),
        PlanItem(digest("c"), "pr-3", Action.DELETE, "deleted: older than 30d"),
        PlanItem(digest("d"), "pr-4", Action.DELETE, "deleted: older than 30d"),
    )
    repo = RepoPlan("r.test", "app", "default", items)
    closed = RepoPlan("r.test", "lib", "default", (), "cannot read the manifest of kept tag v2")
    name = repo.name
    outcomes = [
        Outcome(name, Operation(OpKind.UNTAG, digest("a"), "pr-1"), Status.DONE),
        Outcome(name, Operation(OpKind.DELETE, digest("b")), Status.GONE),
        Outcome(name, Operation(OpKind.DELETE, digest("c")), Status.FAILED, f"500 {SECRET}"),
        Outcome(name, Operation(OpKind.DELETE, digest("d")), Status.SKIPPED, "tag pr-4 moved"),
    ]
    return reports.build(
        Plan(WHEN, (repo, closed)),
        [] if dry_run else outcomes,
        started=WHEN,
        finished=WHEN,
        dry_run=dry_run,
        exit_code=1,
    )


@pytest.fixture(autouse=True)
def _secret() -> None:
    secrets.register(SECRET)


def test_counts_and_actions() -> None:
    report = run_report()
    app = report.repos[0]
    assert dict(app.counts()) == {"kept": 1, "untagged": 1, "deleted": 1, "failed": 1, "skipped": 1}
    dry = run_report(dry_run=True).repos[0].counts()
    assert dry["would-delete"] == 3
    assert dry["would-untag"] == 1


def test_json_schema_fields_and_redaction(tmp_path: Path) -> None:
    data = json.loads(reports.render("json", run_report()))
    assert data["version"] == 1
    assert data["exit_code"] == 1
    row = data["repositories"][0]["items"][2]
    assert set(row) == {"repo", "tag", "digest", "action", "reason", "created", "error"}
    assert row["action"] == "deleted"
    assert row["created"] == WHEN.isoformat()
    failed = data["repositories"][0]["items"][3]
    assert failed["action"] == "failed"
    assert SECRET not in failed["error"]
    assert data["repositories"][1]["error"].startswith("cannot read")
    assert data["totals"]["failed"] == 1


def test_schema_file_validates_the_report(tmp_path: Path) -> None:
    schema = Path(__file__).resolve().parents[2] / "docs" / "cleanup-report.schema.json"
    report = tmp_path / "r.json"
    report.write_text(reports.render("json", run_report()))
    done = check_jsonschema("--schemafile", str(schema), str(report))
    assert done.returncode == 0, done.stdout + done.stderr


def test_human_hides_kept_unless_verbose() -> None:
    text = reports.render("human", run_report())
    assert "r.test/app (default): 1 kept, 1 deleted, 1 untagged, 1 failed, 1 skipped" in text
    assert "pr-2" in text
    assert "deleted: older than 30d" in text
    assert " v1 " not in text
    assert "FAILED CLOSED" in text
    assert SECRET not in text
    assert " v1 " in reports.render("human", run_report(), reports.Options(verbose=True))


def test_markdown_summary() -> None:
    text = reports.render("markdown", run_report())
    assert text.startswith("### ci-env cleanup")
    assert "| `r.test/app` | 1 | 1 | 1 | 1 | 1 |" in text
    assert "failed closed" in text
    assert "#### Failures and skips" in text
    assert SECRET not in text
    dry = reports.render("markdown", run_report(dry_run=True))
    assert "(dry run)" in dry
    assert "| `r.test/app` | 1 | 3 | 1 | 0 | 0 |" in dry
