"""The GitHub job summary: totals, a per-repository table, and what failed."""

from __future__ import annotations

from ci_env.reports.base import CHANGED, Options, ReportFormat, Result, RunReport

_COLUMNS = ("kept", "deleted", "untagged", "failed", "skipped")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class MarkdownFormat(ReportFormat):
    name = "markdown"

    def render(self, report: RunReport, options: Options) -> str:
        title = "ci-env cleanup" + (" (dry run)" if report.dry_run else "")
        totals = report.totals()
        dry = {"deleted": "would-delete", "untagged": "would-untag"} if report.dry_run else {}
        lines = [f"### {title}", ""]
        if report.error:
            lines += [f"> **Stopped:** {_cell(report.error)}", ""]
        lines.append("| repository | " + " | ".join(_COLUMNS) + " |")
        lines.append("|---" * (len(_COLUMNS) + 1) + "|")
        for repo in report.repos:
            counts = repo.counts()
            cells = [str(counts.get(dry.get(c, c), 0)) for c in _COLUMNS]
            name = f"`{repo.name}`" + (" ⚠ failed closed" if repo.error else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        cells = [str(totals.get(dry.get(c, c), 0)) for c in _COLUMNS]
        lines.append("| **total** | " + " | ".join(cells) + " |")
        problems = [
            (repo.name, row.tag or row.digest, row.error or row.reason)
            for repo in report.repos
            for row in repo.rows
            if row.action in {Result.FAILED, Result.SKIPPED}
        ]
        problems += [
            (repo.name, "(repository)", repo.error) for repo in report.failed_repos if repo.error
        ]
        problems += [
            (repo.name, tag, f"broken, left alone: {why}")
            for repo in report.repos
            for tag, _, why in (text.partition(": ") for text in repo.broken)
        ]
        if problems:
            lines += [
                "",
                "#### Failures and skips",
                "",
                "| repository | tag | error |",
                "|---|---|---|",
            ]
            lines += [f"| `{r}` | `{t}` | {_cell(e)} |" for r, t, e in problems[: options.limit]]
        changed = [row for repo in report.repos for row in repo.rows if row.action in CHANGED]
        if changed:
            lines += [
                "",
                "<details><summary>Changed tags</summary>",
                "",
                "| repository | tag | action | reason |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| `{row.repo}` | `{row.tag or row.digest}` | {row.action.value} | "
                f"{_cell(row.reason)} |"
                for row in changed[: options.limit]
            ]
            if len(changed) > options.limit:
                lines.append(f"| … | {len(changed) - options.limit} more | | |")
            lines += ["", "</details>"]
        return "\n".join(lines) + "\n"


FORMAT = MarkdownFormat()
