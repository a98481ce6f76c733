"""The planner's pipeline: times read as tags resolve, one worker budget, progress in tags."""

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from ci_env.cleanup import planner
from ci_env.cleanup.plan import Action
from ci_env.cleanup.rules import Rules
from ci_env.registries.base import Image
from tests.support.fake_backend import TagsOnlyBackend, digest

NOW = datetime(2025, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=60)
BY_AGE = Rules(delete_tags=("pr-.*",), delete_older_than=timedelta(days=30))


class Gauge:
    """Calls in flight across backends, and the most seen at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0


class Named(TagsOnlyBackend):
    """Lists names first and resolves tags one by one, like the Docker Registry API; records
    what happened in order and how many calls ran at once (on `gauge`)."""

    def __init__(self, gauge: Gauge | None = None) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.gauge = gauge or Gauge()

    def _enter(self, event: tuple[str, str]) -> None:
        with self._lock:
            self.events.append(event)
        with self.gauge.lock:
            self.gauge.running += 1
            self.gauge.most = max(self.gauge.most, self.gauge.running)
        time.sleep(0.002)  # a round trip, so that calls can overlap

    def _leave(self) -> None:
        with self.gauge.lock:
            self.gauge.running -= 1

    def tag_names(self, repository: str) -> list[str] | None:
        return sorted(self.tags.get(repository, {}))

    def images_of(self, repository: str, tags: Sequence[str]) -> list[Image]:
        self._enter(("resolve", ",".join(tags)))
        try:
            wanted = set(tags)
            found = [i for i in self.list_images(repository) if wanted & set(i.tags)]
            return [Image(i.digest, tuple(t for t in i.tags if t in wanted)) for i in found]
        finally:
            self._leave()

    def image_time(self, repository: str, image: Image) -> datetime | None:
        self._enter(("time", ",".join(image.tags)))
        try:
            return super().image_time(repository, image)
        finally:
            self._leave()


def seeded(count: int, gauge: Gauge | None = None) -> Named:
    fake = Named(gauge)
    for i in range(count):
        fake.add("app", digest(f"pr{i}"), [f"pr-{i}"], time=OLD)
        fake.add("app", digest(f"v{i}"), [f"v{i}"], time=OLD)
    return fake


def settings(
    workers: ThreadPoolExecutor, listed: list[int] | None = None, resolved: list[int] | None = None
) -> planner.Settings:
    return planner.Settings(
        BY_AGE,
        NOW,
        parallel=2,
        workers=workers,
        on_listed=None if listed is None else listed.append,
        on_resolved=None if resolved is None else resolved.append,
    )


def test_a_tags_time_is_read_right_after_it_is_resolved() -> None:
    fake = seeded(3)
    with ThreadPoolExecutor(1) as workers:  # one worker: tasks run in the order given
        result = planner.plan_repository(fake, "app", settings(workers))
    assert fake.events[:4] == [
        ("resolve", "pr-0"),
        ("time", "pr-0"),
        ("resolve", "pr-1"),
        ("time", "pr-1"),
    ]
    # Tags the name rules keep (v0..v2 do not match delete.tags) need no time at all.
    assert [e for e in fake.events if e[0] == "time"] == [("time", f"pr-{i}") for i in range(3)]
    actions = {item.tag: item.action for item in result.items}
    assert actions == {**{f"pr-{i}": Action.DELETE for i in range(3)}, "v0": Action.KEEP,
                       "v1": Action.KEEP, "v2": Action.KEEP}  # fmt: skip


def test_planning_counts_tags_resolved_of_tags_listed() -> None:
    fake = seeded(4)
    listed: list[int] = []
    resolved: list[int] = []
    with ThreadPoolExecutor(2) as workers:
        planner.plan_repository(fake, "app", settings(workers, listed, resolved))
    assert sum(listed) == 8
    assert sum(resolved) == 8


def test_repositories_planned_at_once_share_one_worker_budget() -> None:
    gauge = Gauge()
    fakes = [seeded(5, gauge) for _ in range(3)]
    with ThreadPoolExecutor(2) as workers:
        found = dict(planner.plan_all([(fake, "app") for fake in fakes], settings(workers)))
    assert sorted(found) == [0, 1, 2]
    assert all(len(plan.items) == 10 for plan in found.values())
    assert gauge.most == 2  # busy, and never more than the budget
