"""Cleanup reports: the run's outcome as data, and the format plug-in family that prints it.

`RunReport` is built from the plan and the apply outcomes (`build`); each format module
(`human`, `json`, `markdown`) exposes `FORMAT`, a `ReportFormat` that renders it to text.
Every rendered text goes through `secrets.redact`. One row per tag (or untagged image):

    repo, tag, digest, action, reason, created, error

`action` is what happened: kept, deleted, untagged, failed, skipped (a saved plan's tag moved),
would-delete / would-untag (dry run), not-run (the run stopped before reaching it).
"""

from __future__ import annotations

import enum
import importlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from ci_env import secrets
from ci_env.cleanup.apply import Outcome, Status
from ci_env.cleanup.plan import Action, Plan, RepoPlan
from ci_env.registries.base import OpKind


class Result(enum.StrEnum):
    KEPT = "kept"
    DELETED = "deleted"
    UNTAGGED = "untagged"
    FAILED = "failed"
    SKIPPED = "skipped"
    WOULD_DELETE = "would-delete"
    WOULD_UNTAG = "would-untag"
    NOT_RUN = "not-run"


CHANGED = frozenset({Result.DELETED, Result.UNTAGGED, Result.WOULD_DELETE, Result.WOULD_UNTAG})


@dataclass(frozen=True)
class Row:
    repo: str
    tag: str | None
    digest: str
    action: Result
    reason: str
    created: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class RepoReport:
    name: str
    kind: str
    rows: tuple[Row, ...] = ()
    error: str | None = None  # the repository failed closed or could not be listed
    broken: tuple[str, ...] = ()  # kept tags left alone as broken ("tag: what is missing")

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter(row.action.value for row in self.rows)
        return counts


@dataclass(frozen=True)
class RunReport:
    started: datetime
    finished: datetime
    dry_run: bool
    repos: tuple[RepoReport, ...] = ()
    error: str | None = None  # what stopped the run (e.g. an AuthError), if anything
    exit_code: int = 0

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for repo in self.repos:
            total.update(repo.counts())
        return total

    @property
    def failed_repos(self) -> list[RepoReport]:
        return [repo for repo in self.repos if repo.error]


def _result(op_kind: OpKind, outcome: Outcome | None, dry_run: bool) -> tuple[Result, str | None]:
    if dry_run:
        return (Result.WOULD_UNTAG if op_kind is OpKind.UNTAG else Result.WOULD_DELETE), None
    if outcome is None:
        return Result.NOT_RUN, None
    if outcome.status is Status.FAILED:
        return Result.FAILED, outcome.detail
    if outcome.status is Status.SKIPPED:
        return Result.SKIPPED, outcome.detail
    return (Result.UNTAGGED if op_kind is OpKind.UNTAG else Result.DELETED), None


def _repo_report(
    repo: RepoPlan, outcomes: Mapping[tuple[str, str | None], Outcome], dry_run: bool
) -> RepoReport:
    rows = []
    for item in repo.items:
        if item.action is Action.KEEP or repo.error:
            result, error = Result.KEPT, None
        elif item.action is Action.UNTAG:
            result, error = _result(OpKind.UNTAG, outcomes.get((item.digest, item.tag)), dry_run)
        else:
            result, error = _result(OpKind.DELETE, outcomes.get((item.digest, None)), dry_run)
        rows.append(Row(repo.name, item.tag, item.digest, result, item.reason, item.time, error))
    return RepoReport(repo.name, repo.kind, tuple(rows), repo.error, repo.broken)


def build(
    plan: Plan,
    outcomes: Sequence[Outcome],
    *,
    started: datetime,
    finished: datetime,
    dry_run: bool,
    error: str | None = None,
    exit_code: int = 0,
) -> RunReport:
    """Rows from the plan, results from the outcomes."""
    by_repo: dict[str, dict[tuple[str, str | None], Outcome]] = {}
    for outcome in outcomes:
        key = (outcome.op.digest, outcome.op.tag if outcome.op.kind is OpKind.UNTAG else None)
        by_repo.setdefault(outcome.repo, {})[key] = outcome
    repos = [_repo_report(r, by_repo.get(r.name, {}), dry_run) for r in plan.repositories]
    return RunReport(started, finished, dry_run, tuple(repos), error, exit_code)


@dataclass(frozen=True)
class Options:
    verbose: bool = False  # list kept tags too
    limit: int = field(default=1000)  # rows per repository in long tables (Markdown)


class ReportFormat(ABC):
    name: ClassVar[str]

    @abstractmethod
    def render(self, report: RunReport, options: Options) -> str:
        """The report as text; callers pass it through `secrets.redact` via `render`."""


FORMATS = ("human", "json", "markdown")


def get(name: str) -> ReportFormat:
    module = importlib.import_module(f"ci_env.reports.{name}")
    fmt: ReportFormat = module.FORMAT
    return fmt


def render(name: str, report: RunReport, options: Options | None = None) -> str:
    return secrets.redact(get(name).render(report, options or Options()))
