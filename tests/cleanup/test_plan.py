import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ci_env.cleanup import plan as plans
from ci_env.cleanup.plan import Action, Plan, PlanItem, RepoPlan
from ci_env.errors import UsageError
from ci_env.registries.base import OpKind
from tests.support.fake_backend import digest

WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def sample() -> Plan:
    items = (
        PlanItem(digest("a"), "v1", Action.KEEP, "kept: x", WHEN),
        PlanItem(digest("a"), "pr-1", Action.UNTAG, "untagged: y", WHEN),
        PlanItem(digest("b"), "pr-2", Action.DELETE, "deleted: z"),
        PlanItem(digest("b"), "pr-3", Action.DELETE, "deleted: z"),
        PlanItem(digest("c"), None, Action.DELETE, "deleted: untagged"),
    )
    closed = RepoPlan("r.test", "other", "default", (), "cannot read v2")
    return Plan(WHEN, (RepoPlan("r.test", "app", "default", items), closed))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    plans.save(sample(), str(path))
    assert plans.load(str(path)) == sample()
    assert json.loads(path.read_text())["version"] == 1


def test_operations_one_delete_per_digest() -> None:
    repo = sample().repositories[0]
    ops = [(op.kind, op.digest, op.tag) for op in repo.operations()]
    assert ops == [
        (OpKind.UNTAG, digest("a"), "pr-1"),
        (OpKind.DELETE, digest("b"), None),
        (OpKind.DELETE, digest("c"), None),
    ]
    assert repo.tags_of(digest("b")) == ["pr-2", "pr-3"]
    assert sample().repositories[1].operations() == []


@pytest.mark.parametrize("text", ["nope", "{}", '{"version": 9}', '{"version": 1, "created": 1}'])
def test_bad_plan_files_are_usage_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(UsageError):
        plans.load(str(path))
