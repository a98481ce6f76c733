"""Parallel apply over the in-memory backend: failures continue, auth stops, re-check, resume."""

from datetime import UTC, datetime

import pytest

from ci_env.cleanup.apply import Applier, Job, Status
from ci_env.cleanup.plan import Action, PlanItem, RepoPlan
from ci_env.errors import AuthError
from tests.cleanup.fakes import FakeBackend, digest


def seeded(count: int) -> tuple[FakeBackend, RepoPlan]:
    fake = FakeBackend()
    items = []
    for index in range(count):
        d = fake.add("app", digest(f"d{index}"), [f"pr-{index}"])
        items.append(PlanItem(d, f"pr-{index}", Action.DELETE, "deleted: test"))
    shared = fake.add("app", digest("shared"), ["v1", "pr-x"])
    items += [
        PlanItem(shared, "v1", Action.KEEP, "kept: test"),
        PlanItem(shared, "pr-x", Action.UNTAG, "untagged: test"),
    ]
    return fake, RepoPlan("fake.test", "app", "fake", tuple(items))


def test_parallel_apply_deletes_everything_once() -> None:
    fake, plan = seeded(50)
    done: list[int] = []
    results = Applier(parallel=8, on_done=done.append).run([Job(plan, fake)])
    assert len(results) == 51 and all(r.ok for r in results)
    assert sum(done) == 51
    assert fake.tags["app"] == {"v1": digest("shared")}
    assert fake.calls["delete"] == 50 and fake.calls["untag"] == 1


def test_failed_deletion_is_reported_and_the_run_goes_on() -> None:
    fake, plan = seeded(10)
    fake.fail.add(digest("d3"))
    results = Applier(parallel=4).run([Job(plan, fake)])
    failed = [r for r in results if r.status is Status.FAILED]
    assert [r.op.digest for r in failed] == [digest("d3")]
    assert "deleting" in failed[0].detail
    assert sum(r.ok for r in results) == 10


def test_auth_error_stops_at_once_keeping_results() -> None:
    fake, plan = seeded(200)
    fake.auth_fail_after = 5
    applier = Applier(parallel=2)
    with pytest.raises(AuthError):
        applier.run([Job(plan, fake)])
    assert 5 <= len([r for r in applier.results if r.ok]) < 20
    assert fake.calls["delete"] + fake.calls["untag"] < 30


def test_second_run_after_a_crash_finishes_the_job() -> None:
    fake, plan = seeded(10)
    fake.auth_fail_after = 4
    with pytest.raises(AuthError):
        Applier(parallel=1).run([Job(plan, fake)])
    fake.auth_fail_after = None
    results = Applier(parallel=3).run([Job(plan, fake)])
    assert all(r.ok for r in results)
    assert {r.status for r in results} == {Status.DONE, Status.GONE}
    assert fake.tags["app"] == {"v1": digest("shared")}


def test_recheck_skips_moved_tags_and_counts_gone_ones() -> None:
    fake, plan = seeded(3)
    fake.tags["app"]["pr-0"] = digest("elsewhere")  # moved since planning
    del fake.tags["app"]["pr-1"]  # deleted by someone else
    results = {r.op.digest: r for r in Applier(recheck=True).run([Job(plan, fake)])}
    assert results[digest("d0")].status is Status.SKIPPED
    assert "pr-0 moved" in results[digest("d0")].detail
    assert results[digest("d1")].status is Status.GONE
    assert results[digest("d2")].status is Status.DONE
    assert digest("d0") in fake.manifests["app"]


def test_plan_time_is_kept_in_items() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    item = PlanItem(digest("a"), "t", Action.DELETE, "x", when)
    assert item.but(Action.UNTAG, "y").time == when
