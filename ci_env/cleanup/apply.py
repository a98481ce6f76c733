"""Carrying out a plan: parallel workers over the backends, safe to stop and to re-run.

- `parallel` workers share one backend (one pooled session) per registry; backends with a
  batch API get chunks of their declared `Backend.batch_size` operations per call.
- `--max-requests-per-second` is enforced by the backends' shared transport limiter.
- Before each wave a repository's plan is re-validated (`revalidate`): tags pushed or moved
  since planning protect their digests; a check that fails closes the repository (or the
  second wave) with nothing more deleted. `plans` holds the plans as finally carried out.
- Applying a saved plan re-resolves each planned tag first: a tag that moved is skipped and
  reported, a tag already gone counts as done — so a second run after a crash finishes the job.
- A failed operation is recorded and the run goes on; an AuthError stops everything at once
  (remaining work is cancelled) and propagates, with `results` holding what was done.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial

from ci_env.cleanup import revalidate
from ci_env.cleanup.graph import short
from ci_env.cleanup.plan import RepoPlan
from ci_env.errors import AuthError, CiEnvError
from ci_env.registries.base import Backend, Operation, OpKind, OpResult

logger = logging.getLogger(__name__)


class Status(enum.StrEnum):
    DONE = "done"
    GONE = "gone"  # already deleted: success
    FAILED = "failed"
    SKIPPED = "skipped"  # a saved plan's tag moved since planning


@dataclass(frozen=True)
class Outcome:
    repo: str  # RepoPlan.name
    op: Operation
    status: Status
    detail: str = ""  # error, skip reason or method used

    @property
    def ok(self) -> bool:
        return self.status in {Status.DONE, Status.GONE}


@dataclass(frozen=True)
class Job:
    plan: RepoPlan
    backend: Backend


def _chunks(job: Job, wave: int) -> list[list[Operation]]:
    ops = job.plan.waves()[wave]
    size = max(1, job.backend.batch_size)
    return [ops[start : start + size] for start in range(0, len(ops), size)]


class Applier:
    def __init__(
        self,
        *,
        parallel: int = 8,
        recheck: bool = False,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        self.parallel = max(1, parallel)
        self.recheck = recheck
        self.on_done = on_done or (lambda count: None)
        self.results: list[Outcome] = []
        self.plans: dict[str, RepoPlan] = {}  # name -> the plan as re-validated and carried out
        self._seen: dict[str, Mapping[str, str]] = {}  # name -> tag -> digest seen so far
        self._held: dict[str, Mapping[str, str]] = {}  # name -> digest -> why it is not deleted
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            self.results.extend(outcomes)
        self.on_done(len(outcomes))

    def _check(self, job: Job, op: Operation) -> Outcome | None:
        """Re-resolve the planned tags of `op`; an Outcome when the op must not run."""
        tags = [op.tag] if op.kind is OpKind.UNTAG and op.tag else job.plan.tags_of(op.digest)
        present = 0
        for tag in tags:
            now = job.backend.resolve(job.plan.repository, tag)
            if now is None:
                continue
            present += 1
            if now != op.digest:
                why = f"tag {tag} moved to {short(now)} since planning"
                return Outcome(job.plan.name, op, Status.SKIPPED, why)
        if tags and not present:
            return Outcome(job.plan.name, op, Status.GONE, "already gone")
        return None

    def _outcome(self, job: Job, result: OpResult) -> Outcome:
        if result.already_gone:
            return Outcome(job.plan.name, result.op, Status.GONE, "already gone")
        if result.error is not None:
            return Outcome(job.plan.name, result.op, Status.FAILED, result.error.render())
        return Outcome(job.plan.name, result.op, Status.DONE, result.method)

    def _run(self, job: Job, ops: Sequence[Operation]) -> None:
        if self._stop.is_set():
            return
        try:
            self._run_ops(job, ops)
        except AuthError:
            self._stop.set()  # the other workers stop before their next operation
            raise

    def _run_ops(self, job: Job, ops: Sequence[Operation]) -> None:
        todo: list[Operation] = []
        held = self._held.get(job.plan.name, {})
        for op in ops:
            if op.kind is OpKind.DELETE and op.digest in held:
                self._record([Outcome(job.plan.name, op, Status.SKIPPED, held[op.digest])])
                continue
            try:
                early = self._check(job, op) if self.recheck else None
            except AuthError:
                raise
            except CiEnvError as error:
                early = Outcome(job.plan.name, op, Status.FAILED, error.render())
            if early is None:
                todo.append(op)
            else:
                self._record([early])
        if not todo:
            return
        for result in job.backend.apply(job.plan.repository, todo):
            self._record([self._outcome(job, result)])
            if self._stop.is_set():
                return

    def _revalidate(self, job: Job, wave: int) -> Job | None:
        """The job with its plan checked against the registry now; None when the check
        failed and the wave must not run in this repository (recorded as failures)."""
        name = job.plan.name
        first = name not in self._seen  # the first check that runs re-resolves kept tags
        seen = self._seen.get(name) or revalidate.planned_tags(job.plan)
        try:
            checked = revalidate.revalidate(
                job.backend,
                job.plan,
                seen,
                wave=wave,
                kept_too=self.recheck and first,
                parallel=self.parallel,
            )
        except AuthError:
            raise
        except CiEnvError as error:
            return self._closed(job, wave, error.render().removeprefix("error: "))
        if checked.changed:
            logger.warning(
                "%s: %d planned removal(s) changed: tags appeared or moved since planning",
                name, checked.changed,
            )  # fmt: skip
        if checked.ran:
            self._seen[name] = checked.seen
            self._held[name] = {**self._held.get(name, {}), **checked.held}
        self.plans[name] = checked.plan
        return Job(checked.plan, job.backend)

    def _closed(self, job: Job, wave: int, why: str) -> Job | None:
        name = job.plan.name
        if wave == 0:
            text = f"the re-check before deleting failed: {why}; nothing was deleted here"
            plan = replace(job.plan, error=text)
            self.plans[name] = plan
            return Job(plan, job.backend)
        text = f"not run: the re-check before the second wave failed: {why}"
        self._record([Outcome(name, op, Status.FAILED, text) for op in job.plan.waves()[1]])
        return None

    def run(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Apply every job's operations, wave by wave (see `RepoPlan.waves`), each repository
        re-validated right before each wave; AuthError propagates after the pool stops."""
        self.plans = {job.plan.name: job.plan for job in jobs}
        current = list(jobs)
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="cleanup") as pool:
            for wave in (0, 1):
                checked = list(pool.map(partial(self._revalidate, wave=wave), current))
                current = [job for job in checked if job is not None]
                futures: list[Future[None]] = [
                    pool.submit(self._run, job, chunk)
                    for job in current
                    for chunk in _chunks(job, wave)
                ]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    self._stop.set()
                    for future in futures:
                        future.cancel()
                    error = failed[0].exception()
                    assert error is not None
                    raise error
        jobs = [Job(self.plans[job.plan.name], job.backend) for job in jobs]
        gone: dict[str, list[str]] = {}  # repository -> digests whose delete found them gone
        for o in self.results:
            if o.status is Status.GONE and o.op.kind is OpKind.DELETE:
                gone.setdefault(o.repo, []).append(o.op.digest)
        for job in jobs:
            if job.plan.name in gone:
                self._clear_dangling(job, gone[job.plan.name])
        return self.results

    def _clear_dangling(self, job: Job, digests: list[str]) -> None:
        """Tags of digests found already gone may still be listed (see
        `Backend.clear_dangling`): one look per repository, only where that happened."""
        name = job.plan.name
        tags = [tag for digest in digests for tag in job.plan.tags_of(digest)]
        if not tags:
            return
        try:
            cleared = job.backend.clear_dangling(job.plan.repository, tags)
        except CiEnvError as error:
            logger.warning("%s: tags left without a manifest: %s", name, error.message)
            return
        if cleared:
            logger.warning(
                "%s: removed %d tag(s) the registry had left without a manifest: %s",
                name, len(cleared), ", ".join(cleared),
            )  # fmt: skip
