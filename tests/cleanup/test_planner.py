"""The planner's pipeline: times read as tags resolve, one worker budget, progress in tags."""

import threading
import time
from collections.abc import Iterator, Sequence
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


class Paged(Named):
    """Lists in pages of `size`; page k+1 is answered only once a tag of an earlier page has
    been resolved (or after `wait` seconds), to see whether resolving waits for the listing."""

    def __init__(self, size: int, wait: float = 2.0) -> None:
        super().__init__()
        self.size, self.wait = size, wait
        self.resolving = threading.Event()

    def tag_name_pages(self, repository: str) -> Iterator[list[str]] | None:
        names = sorted(self.tags.get(repository, {}))
        for start in range(0, len(names), self.size):
            if start:
                seen = self.resolving.wait(self.wait)
                self.events.append(("page", "after a resolve" if seen else "before any"))
            yield names[start : start + self.size]

    def images_of(self, repository: str, tags: Sequence[str]) -> list[Image]:
        self.resolving.set()
        return super().images_of(repository, tags)


def paged(names: dict[str, datetime], size: int, wait: float = 2.0) -> Paged:
    fake = Paged(size, wait)
    for name, when in names.items():
        fake.add("app", digest(name), [name], time=when)
    return fake


def test_a_pages_tags_are_resolved_while_the_next_page_is_listed() -> None:
    fake = paged({f"pr-{i}": OLD for i in range(6)}, size=2)
    with ThreadPoolExecutor(2) as workers:
        result = planner.plan_repository(fake, "app", settings(workers))
    assert [e for e in fake.events if e[0] == "page"] == [("page", "after a resolve")] * 2
    assert {item.tag: item.action for item in result.items} == {
        f"pr-{i}": Action.DELETE for i in range(6)
    }


def test_nothing_is_resolved_while_no_listed_tag_can_go() -> None:
    fake = paged({"v1": OLD, "v2": OLD, "v3": OLD}, size=1, wait=0.01)
    resolved: list[int] = []
    with ThreadPoolExecutor(2) as workers:
        result = planner.plan_repository(fake, "app", settings(workers, resolved=resolved))
    assert [e[0] for e in fake.events] == ["page", "page"]  # listed, nothing resolved
    assert [(i.tag, i.action) for i in result.items] == [
        (t, Action.KEEP) for t in ("v1", "v2", "v3")
    ]
    assert sum(resolved) == 3


def test_a_version_kept_on_its_page_but_not_overall_is_still_decided() -> None:
    # Each page alone holds the two highest versions it has; together only 3.0.0 and 4.0.0
    # are, so 1.0.0 and 2.0.0 can go once the listing is complete.
    rules = Rules(keep_semver=2, delete_older_than=timedelta(days=30))
    fake = paged(dict.fromkeys(("1.0.0", "2.0.0", "3.0.0", "4.0.0"), OLD), size=2, wait=0.01)
    with ThreadPoolExecutor(2) as workers:
        s = planner.Settings(rules, NOW, parallel=2, workers=workers)
        result = planner.plan_repository(fake, "app", s)
    assert {item.tag: item.action for item in result.items} == {
        "1.0.0": Action.DELETE, "2.0.0": Action.DELETE,
        "3.0.0": Action.KEEP, "4.0.0": Action.KEEP,
    }  # fmt: skip


def test_planning_without_shared_workers_streams_on_a_pool_of_its_own() -> None:
    fake = paged({f"pr-{i}": OLD for i in range(4)}, size=2)
    result = planner.plan_repository(fake, "app", planner.Settings(BY_AGE, NOW, parallel=2))
    assert ("page", "after a resolve") in fake.events
    assert len(result.items) == 4
