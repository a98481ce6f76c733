"""The cleanup plan: one decision per tag (or untagged image), and its JSON form.

A plan is what `--dry-run` prints, what `--plan-out` saves and what `--apply-plan` carries out
later. Operations are derived from it, never stored separately, so a saved plan cannot say one
thing and do another: untag items become one UNTAG each, delete items one DELETE per digest.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ci_env import private_files
from ci_env.errors import UsageError
from ci_env.registries.base import Operation, OpKind

PLAN_VERSION = 1


class Action(enum.StrEnum):
    KEEP = "keep"
    UNTAG = "untag"  # remove this tag only; the digest is still needed
    DELETE = "delete"  # delete the digest (every tag on it is in the plan as delete)


@dataclass(frozen=True)
class PlanItem:
    digest: str
    tag: str | None  # None: an untagged image
    action: Action
    reason: str  # "kept: newer than 2h", "deleted: older than 30d", ...
    time: datetime | None = None  # push time, else creation time, where known

    def but(self, action: Action, reason: str) -> PlanItem:
        return replace(self, action=action, reason=reason)


@dataclass(frozen=True)
class RepoPlan:
    registry: str
    repository: str
    kind: str
    items: tuple[PlanItem, ...] = ()
    error: str | None = None  # the repository failed closed: nothing is deleted there
    broken: tuple[str, ...] = ()  # "tag: what is missing" for kept tags left alone as broken

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def operations(self) -> list[Operation]:
        """UNTAG per untag item, then one DELETE per digest of delete items."""
        return [op for wave in self.waves() for op in wave]

    def waves(self) -> list[list[Operation]]:
        """Operations in the order they must run: untags and deletes of tagged images first,
        then digests that only go with them (index children, referrers, untagged images).
        A child must outlive its index: ECR refuses to delete a child an index still lists,
        and an index whose children went first is broken if the run stops in between."""
        if self.error:
            return [[], []]
        first = [
            Operation(OpKind.UNTAG, item.digest, item.tag)
            for item in self.items
            if item.action is Action.UNTAG
        ]
        tagged = {i.digest for i in self.items if i.action is Action.DELETE and i.tag is not None}
        digests = dict.fromkeys(i.digest for i in self.items if i.action is Action.DELETE)
        first.extend(Operation(OpKind.DELETE, d) for d in digests if d in tagged)
        return [first, [Operation(OpKind.DELETE, d) for d in digests if d not in tagged]]

    def tags_of(self, digest: str) -> list[str]:
        """Planned tags on `digest` (re-checked before a saved plan deletes it)."""
        return [i.tag for i in self.items if i.digest == digest and i.tag is not None]


@dataclass(frozen=True)
class Plan:
    created: datetime
    repositories: tuple[RepoPlan, ...] = field(default=())
    # What in-use protection scanned when planning ("kube context a", "list.txt"); empty when
    # it was off. `--apply-plan` must then recheck it (the plan does not carry the policy).
    in_use: tuple[str, ...] = ()


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def to_json(plan: Plan) -> str:
    return json.dumps(
        {
            "version": PLAN_VERSION,
            "created": plan.created.isoformat(),
            "in_use": list(plan.in_use),
            "repositories": [
                {
                    "registry": repo.registry,
                    "repository": repo.repository,
                    "kind": repo.kind,
                    "error": repo.error,
                    "broken": list(repo.broken),
                    "items": [
                        {
                            "tag": item.tag,
                            "digest": item.digest or None,
                            "action": item.action.value,
                            "reason": item.reason,
                            "time": _time(item.time),
                        }
                        for item in repo.items
                    ],
                }
                for repo in plan.repositories
            ],
        },
        indent=2,
    )


def save(plan: Plan, path: str) -> None:
    try:
        private_files.write_text(path, to_json(plan) + "\n")  # a plan drives deletions: 0600
    except OSError as error:
        raise UsageError(f"cannot write the plan to {path!r} ({error.strerror})") from None


def load(path: str) -> Plan:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read the plan {path!r} ({error.strerror})") from None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the stack
        raise UsageError(f"{path!r} is not JSON", "pass a file written by --plan-out") from None
    try:
        return from_data(data)
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(
            f"{path!r} is not a ci-env plan ({error})", "pass a file written by --plan-out"
        ) from None


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def from_data(data: Any) -> Plan:
    if data.get("version") != PLAN_VERSION:
        raise ValueError(f"unsupported plan version {data.get('version')!r}")
    repos = tuple(_repo(entry) for entry in data["repositories"])
    in_use = tuple(str(source) for source in data.get("in_use") or ())
    return Plan(datetime.fromisoformat(data["created"]), repos, in_use)


def _repo(entry: Any) -> RepoPlan:
    items = tuple(
        PlanItem(
            digest=str(item["digest"] or ""),
            tag=None if item["tag"] is None else str(item["tag"]),
            action=Action(item["action"]),
            reason=str(item["reason"]),
            time=_parse_time(item.get("time")),
        )
        for item in entry["items"]
    )
    broken = tuple(str(text) for text in entry.get("broken") or ())
    return RepoPlan(
        str(entry["registry"]),
        str(entry["repository"]),
        str(entry["kind"]),
        items,
        entry["error"],
        broken,
    )


def count(items: Iterable[PlanItem], action: Action) -> int:
    return sum(1 for item in items if item.action is action)
