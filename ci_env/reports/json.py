"""`--report-json FILE`: the machine-readable report (schema: docs/cleanup-report.schema.json).

{"version": 1, "started": ISO, "finished": ISO, "dry_run": bool, "exit_code": int,
 "error": str|null, "totals": {action: count},
 "repositories": [{"repo", "kind", "error", "broken": [str], "counts": {...},
                   "items": [{"repo", "tag", "digest", "action", "reason", "created",
                              "error"}]}]}
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ci_env.reports.base import Options, ReportFormat, Row, RunReport

REPORT_VERSION = 1


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(row: Row) -> dict[str, Any]:
    return {
        "repo": row.repo,
        "tag": row.tag,
        "digest": row.digest or None,  # None: a kept tag whose digest was never needed
        "action": row.action.value,
        "reason": row.reason,
        "created": _time(row.created),
        "error": row.error,
    }


class JsonFormat(ReportFormat):
    name = "json"

    def render(self, report: RunReport, options: Options) -> str:
        data = {
            "version": REPORT_VERSION,
            "started": _time(report.started),
            "finished": _time(report.finished),
            "dry_run": report.dry_run,
            "exit_code": report.exit_code,
            "error": report.error,
            "totals": dict(sorted(report.totals().items())),
            "repositories": [
                {
                    "repo": repo.name,
                    "kind": repo.kind,
                    "error": repo.error,
                    "broken": list(repo.broken),
                    "counts": dict(sorted(repo.counts().items())),
                    "items": [_row(row) for row in repo.rows],
                }
                for repo in report.repos
            ],
        }
        return json.dumps(data, indent=2)


FORMAT = JsonFormat()
