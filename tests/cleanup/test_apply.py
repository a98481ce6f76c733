"""Parallel apply over the in-memory backend: failures continue, auth stops, re-check, resume."""

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ci_env.cleanup.apply import Applier, Job, Status
from ci_env.cleanup.plan import Action, PlanItem, RepoPlan
from ci_env.errors import AuthError, RegistryError
from ci_env.registries.base import Image
from tests.support.fake_backend import FakeBackend, digest


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
    assert len(results) == 51
    assert all(r.ok for r in results)
    assert sum(done) == 51
    assert fake.tags["app"] == {"v1": digest("shared")}
    assert fake.calls["delete"] == 50
    assert fake.calls["untag"] == 1


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


def index_plan() -> tuple[FakeBackend, RepoPlan, str, str]:
    """pr-1 is an index over an untagged child: both planned to go (the child in wave 2)."""
    fake = FakeBackend()
    child = fake.add("app", digest("child"))
    index = fake.add("app", digest("idx"), ["pr-1"], children=[child])
    kept = fake.add("app", digest("v1"), ["v1"])
    items = (
        PlanItem(kept, "v1", Action.KEEP, "kept: test"),
        PlanItem(index, "pr-1", Action.DELETE, "deleted: test"),
        PlanItem(child, None, Action.DELETE, "deleted: part of deleted idx"),
    )
    return fake, RepoPlan("fake.test", "app", "fake", items), index, child


def test_a_tag_pushed_since_planning_protects_its_digest_and_children() -> None:
    fake, plan, index, child = index_plan()
    fake.tags["app"]["release"] = index  # pushed after planning
    applier = Applier(parallel=2)
    results = applier.run([Job(plan, fake)])
    assert [(r.op.kind.value, r.op.tag, r.status) for r in results] == [
        ("untag", "pr-1", Status.DONE)
    ]
    assert fake.tags["app"] == {"v1": digest("v1"), "release": index}
    items = {i.tag or i.digest: i for i in applier.plans[plan.name].items}
    assert items[child].action is Action.KEEP
    assert items[child].reason == "kept: tag release appeared since planning"
    assert "digest kept: tag release appeared" in items["pr-1"].reason


class FlakyListing(FakeBackend):
    """Lists fine `good` times, then fails (the registry went away mid-run)."""

    good = 0

    def list_images(self, repository: str) -> list[Image]:
        if self.calls["list"] >= self.good:
            self._count("list")
            raise RegistryError("listing failed", status=503)
        return super().list_images(repository)


def test_a_failing_check_closes_the_repository_before_any_deletion() -> None:
    fake, plan, index, child = index_plan()
    flaky = FlakyListing()
    flaky.tags, flaky.manifests = fake.tags, fake.manifests
    applier = Applier(parallel=2)
    assert applier.run([Job(plan, flaky)]) == []
    assert flaky.calls["delete"] == 0
    closed = applier.plans[plan.name]
    assert closed.error is not None
    assert "re-check before deleting failed" in closed.error


def test_a_failing_second_check_fails_the_second_wave_only() -> None:
    fake, plan, index, child = index_plan()
    flaky = FlakyListing()
    flaky.good = 1
    flaky.tags, flaky.manifests = fake.tags, fake.manifests
    results = Applier(parallel=2).run([Job(plan, flaky)])
    by_digest = {r.op.digest: r for r in results}
    assert by_digest[index].status is Status.DONE
    assert by_digest[child].status is Status.FAILED
    assert "re-check before the second wave failed" in by_digest[child].detail
    assert child in flaky.manifests["app"]


def test_a_tag_pushed_since_planning_keeps_the_referrers_of_its_digest() -> None:
    fake = FakeBackend()
    doomed = fake.add("app", digest("img"), ["pr-1"])
    fallback = doomed.replace(":", "-") + ".sig"
    sig = fake.add("app", digest("sig"), [fallback])
    sbom = fake.add("app", digest("sbom"), subject=doomed)  # by the referrers API
    items = (
        PlanItem(doomed, "pr-1", Action.DELETE, "deleted: test"),
        PlanItem(sig, fallback, Action.DELETE, "deleted: referrer of deleted img"),
        PlanItem(sbom, None, Action.DELETE, "deleted: referrer of deleted img"),
    )
    plan = RepoPlan("fake.test", "app", "fake", items)
    fake.tags["app"]["release"] = doomed
    applier = Applier(parallel=2)
    applier.run([Job(plan, fake)])
    assert fake.calls["delete"] == 0
    assert set(fake.manifests["app"]) == {doomed, sig, sbom}
    final = {i.tag or i.digest: i for i in applier.plans[plan.name].items}
    assert final[fallback].action is Action.KEEP
    assert "release appeared" in final[fallback].reason
    assert final[sbom].action is Action.KEEP
    assert final["pr-1"].action is Action.UNTAG


class Signalling(FakeBackend):
    """Sets `deleted` on its first delete."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted = threading.Event()

    def delete(self, repository: str, digest: str) -> str:
        method = super().delete(repository, digest)
        self.deleted.set()
        return method


def test_a_repository_is_cleaned_while_the_next_one_is_still_planned() -> None:
    """The jobs come one by one as plans become final: the first repository's deletions do
    not wait for the second plan (which here waits for them, so a batch apply would hang)."""
    seeded_first, first_plan = seeded(3)
    first = Signalling()
    first.tags, first.manifests = seeded_first.tags, seeded_first.manifests
    second, second_plan = seeded(2)

    def plans() -> Iterator[Job]:
        yield Job(first_plan, first)
        assert first.deleted.wait(10), "the first repository waited for the second plan"
        yield Job(replace(second_plan, registry="other.test"), second)

    results = Applier(parallel=2).run(plans())
    assert {r.repo for r in results} == {first_plan.name, "other.test/app"}
    assert all(r.ok for r in results)
    assert first.calls["delete"] == 3
    assert second.calls["delete"] == 2


def test_a_planning_error_stops_the_repositories_already_started() -> None:
    fake, plan = seeded(5)

    def plans() -> Iterator[Job]:
        yield Job(plan, fake)
        raise AuthError("token refused while planning the next repository")

    applier = Applier(parallel=1)
    with pytest.raises(AuthError):
        applier.run(plans())
    assert len(applier.results) <= 6  # what ran before the stop is recorded, nothing after
