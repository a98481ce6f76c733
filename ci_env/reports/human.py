"""The terminal / CI-log report: per repository, counts and a table of what changed.

Kept tags are only listed with `--verbose`; deleted, untagged, failed and skipped ones always.
"""

from __future__ import annotations

from collections.abc import Sequence

from ci_env.reports.base import Options, RepoReport, ReportFormat, Result, Row, RunReport

_COUNTED = (
    "kept",
    "deleted",
    "untagged",
    "failed",
    "skipped",
    "would-delete",
    "would-untag",
    "not-run",
)


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[name]} {name}" for name in _COUNTED if counts.get(name))


def table(rows: Sequence[Row]) -> list[str]:
    cells = [
        (row.action.value, row.tag or "<untagged>", row.digest[:19], row.error or row.reason)
        for row in rows
    ]
    widths = [max(len(cell[i]) for cell in cells) for i in range(3)]
    return [
        "  " + "  ".join(cell[i].ljust(widths[i]) for i in range(3)) + "  " + cell[3]
        for cell in cells
    ]


def summary(repo: RepoReport) -> str:
    """The counts, or why there are none: a repository that failed was not found tidy."""
    return counts_line(dict(repo.counts())) or ("not planned" if repo.error else "nothing to do")


def render_repo(repo: RepoReport, options: Options) -> list[str]:
    """One repository: a counts line, a fail-closed note, and the table of changed tags."""
    lines = [f"{repo.name} ({repo.kind}): {summary(repo)}"]
    if repo.error:
        lines.append(f"  FAILED CLOSED, nothing deleted: {repo.error}")
    lines.extend(f"  BROKEN, left alone: {text}" for text in repo.broken)
    shown = [row for row in repo.rows if options.verbose or row.action is not Result.KEPT]
    if shown:
        lines.extend(table(shown))
    return lines


def render_totals(report: RunReport) -> list[str]:
    mode = " (dry run: nothing changed)" if report.dry_run else ""
    idle = "nothing done" if report.error or report.failed_repos else "nothing to do"
    lines = [f"total{mode}: {counts_line(dict(report.totals())) or idle}"]
    if report.error:
        lines.append(f"stopped: {report.error}")
    return lines


class HumanFormat(ReportFormat):
    name = "human"

    def render(self, report: RunReport, options: Options) -> str:
        lines = [line for repo in report.repos for line in render_repo(repo, options)]
        return "\n".join(lines + render_totals(report))


FORMAT = HumanFormat()
