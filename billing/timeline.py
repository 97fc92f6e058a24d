"""The timeline of due work: schedule a job, claim due jobs, run them exactly once.

Domain code says *what* must happen *when* (`schedule("renewal", subscription, at=…)`); handlers
registered with `@handler("renewal")` say how. Two drivers run due jobs:

- wall time: `tick()` runs every few seconds from a django-q2 Schedule. It claims each due job
  with a conditional update (`PENDING → QUEUED`, row count 1) and hands it to a worker through
  `async_task`, so any number of workers on any number of machines share the load;
- test clocks: `advance_clock()` runs a clock's due jobs in `(due_at, id)` order, moving the
  clock's `frozen_time` to each job's time as it goes (SPEC R-CLOCK-2).

A job runs in one transaction with its domain work, and is marked done in that same
transaction, so a worker that dies mid-job leaves the job QUEUED with nothing half-done; a
later tick re-queues it. Running a job that is already done does nothing. Handlers re-read state
and do nothing when the work no longer applies (invoice paid, subscription canceled).

Crowds: jobs of one kind due together (every subscription started on the same day renews at the
same instant) run as one batch when their kind registered `load_many`: the same handler runs for
each object under `batching.deferred()`, and everything is written in bulk at the end
(`run_many`). Objects the handler's `can_batch` refuses, and every job of a batch that failed,
then run alone through `run`, which stays the reference behaviour.
"""

import contextlib
import gc
import logging
import time
import traceback
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import batching, clocks
from billing.choices import JobStatus, TestClockStatus
from billing.models import DueJob, TestClock

log = logging.getLogger(__name__)

# A job queued this long ago without finishing lost its worker: queue it again.
STALE_AFTER = timedelta(minutes=10)
# A job whose handler raised is tried again later, this many times in all.
MAX_ATTEMPTS = 5
RETRY_BACKOFF = timedelta(minutes=5)

# Jobs of one kind run together, at most this many in one transaction (1 turns batching off).
BATCH_SIZE = 500
# A clock advancing with helpers hands out at most this many batches of one instant at a time.
CROWD_BATCHES = 100

_handlers: dict[str, Callable] = {}
_targets: dict[str, Callable] = {}
# kind → (load_many(ids) → {id: obj}, can_batch(obj, job) → bool)
_batchers: dict[str, tuple[Callable, Callable]] = {}


def handler(
    kind: str,
    *,
    target: Callable,
    load_many: Callable | None = None,
    can_batch: Callable | None = None,
):
    """Register the function that runs jobs of `kind`; `target(id)` loads (and locks) the object.

    The handler is called as `fn(obj, job)` inside the job's transaction. With `load_many(ids)`
    (load and lock many objects, with everything the handler reads, registered with
    `batching.register`), crowds of such jobs run in batches; `can_batch(obj, job)` says which
    objects the handler can take there (the others run alone).
    """

    def register(fn):
        if kind in _handlers:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        _handlers[kind] = fn
        _targets[kind] = target
        if load_many is not None:
            _batchers[kind] = (load_many, can_batch or (lambda obj, job: True))
        return fn

    return register


def kinds() -> list[str]:
    """Every registered job kind, sorted (the admin filters by them)."""
    return sorted(_handlers)


def _handler_for(kind: str):
    try:
        return _handlers[kind], _targets[kind]
    except KeyError:
        raise ValueError(f"unknown job kind {kind!r}") from None


def _clock_of(obj):
    """The test clock an object lives on, if any."""
    clock_id = getattr(obj, "test_clock_id", None)
    if clock_id is None and hasattr(obj, "customer"):
        clock_id = obj.customer.test_clock_id
    return clock_id


def schedule(kind: str, obj, *, at) -> DueJob:
    """Make `kind` happen to `obj` at `at`, replacing any pending job of that kind for `obj`."""
    _handler_for(kind)
    cancel(kind, obj)
    job = DueJob(
        account_id=obj.account_id,
        livemode=obj.livemode,
        kind=kind,
        target_id=obj.pk,
        due_at=at,
        test_clock_id=_clock_of(obj),
    )
    batch = batching.active()
    if batch is not None:
        batch.new_jobs[obj.pk][kind] = job
    else:
        job.save(force_insert=True)
    return job


def cancel(kind: str | None, obj) -> int:
    """Cancel pending jobs for `obj` (of `kind`, or all kinds when None); returns how many
    (in a batch: how many it had scheduled itself; the database's are canceled at the flush)."""
    batch = batching.active()
    if batch is not None:
        # A row the batch inserts has no job in the database to cancel; nor has the pair of a
        # pending job the batch runs (done at the flush, and the only pending one of its pair).
        if id(obj) not in batch.inserts[type(obj)] and (kind, obj.pk) not in batch.running:
            batch.canceled[kind].add(obj.pk)
        scheduled = batch.new_jobs.get(obj.pk)
        if not scheduled:
            return 0
        if kind is None:
            count = len(scheduled)
            scheduled.clear()
            return count
        return int(scheduled.pop(kind, None) is not None)
    jobs = DueJob.objects.filter(target_id=obj.pk, status=JobStatus.PENDING)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    return jobs.update(status=JobStatus.CANCELED, finished_at=timezone.now())


def apply_deferred(finished: list[int], canceled: dict, new_jobs: list) -> None:
    """A batch's job changes: mark the jobs it ran done, cancel what it canceled (before it
    ran), then add its new jobs; on PostgreSQL, sent with the rest of the flush.

    Done first: a job the batch ran is no longer pending when a new job of its kind and target
    takes its place (`due_job_one_pending_per_kind_and_target`), and no cancel touches it."""
    now = timezone.now()
    if finished:
        batching.update_all(
            DueJob.objects.filter(pk__among=finished),
            status=JobStatus.DONE,
            attempts=F("attempts") + 1,
            finished_at=now,
        )
    for kind, targets in canceled.items():
        targets = list(targets)
        for start in range(0, len(targets), 1000):
            jobs = DueJob.objects.filter(
                target_id__among=targets[start : start + 1000], status=JobStatus.PENDING
            )
            if kind is not None:
                jobs = jobs.filter(kind=kind)
            batching.update_all(jobs, status=JobStatus.CANCELED, finished_at=now)
    # COPY on PostgreSQL; the new jobs' ids are not read back (nothing in a batch reads them).
    batching.bulk_insert(DueJob, new_jobs)


def pending(obj):
    """The pending jobs for `obj`, soonest first (the dashboard shows them)."""
    return DueJob.objects.filter(target_id=obj.pk, status=JobStatus.PENDING).order_by("due_at")


def run(job_id: int) -> bool:
    """Run one claimed job (QUEUED) or, from a clock, one pending job. True if it ran now.

    The job row is locked for the whole transaction, so two workers handed the same job run it
    once: the second waits, then finds it done.
    """
    try:
        with transaction.atomic():
            job = (
                DueJob.objects.select_for_update()
                .filter(pk=job_id, status__in=[JobStatus.PENDING, JobStatus.QUEUED])
                .first()
            )
            if job is None:
                return False
            fn, load = _handler_for(job.kind)
            obj = load(job.target_id)
            if obj is not None:
                fn(obj, job)
            job.status = JobStatus.DONE
            job.attempts = F("attempts") + 1
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "attempts", "finished_at"])
            return True
    except Exception:
        _record_failure(job_id, traceback.format_exc())
        raise


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector off while a batch runs, back on (as it was) after.

    A batch holds thousands of objects for its whole run (instances, renderings, events), and
    every few hundred allocations the collector walked the young ones, then, as they outlived
    its checks, older and older generations: 8% of a batch's time (measured with higher
    thresholds). Paused, it meets the batch's objects once, at the first collection after,
    when the cycles among them (instances and their caches) are garbage."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_many(job_ids: list[int]) -> int:
    """Run due jobs of one kind as one batch (see the module docstring); returns how many ran.

    All or nothing: if anything fails, the batch is rolled back and each job runs alone, so a
    bad object costs its own job a failure and nothing else.
    """
    if len(job_ids) == 1:
        return int(run(job_ids[0]))
    alone: list[int] = []
    ran = 0
    try:
        # The collector comes back once the batch's objects are gone (`_run_batch` returned):
        # back on while they lived, its first collection walked every one of them.
        with _collector_paused():
            ran = _run_batch(job_ids, alone)
    except Exception:
        log.exception("a batch of %s due jobs failed; running them one by one", len(job_ids))
        alone, ran = list(job_ids), 0
    for job_id in alone:
        # run() records a failure on the job itself; the other jobs go on.
        with contextlib.suppress(Exception):
            ran += int(run(job_id))
    return ran


def _run_batch(job_ids: list[int], alone: list[int]) -> int:
    """`run_many`'s batch in one transaction; jobs that must run alone go to `alone`."""
    with transaction.atomic():
        jobs = list(
            DueJob.objects.select_for_update()
            .filter(pk__among=job_ids, status__in=[JobStatus.PENDING, JobStatus.QUEUED])
            .order_by("id")
        )
        if not jobs:
            return 0
        kinds_here = {job.kind for job in jobs}
        if len(kinds_here) != 1 or jobs[0].kind not in _batchers:
            raise ValueError(f"jobs of kinds {sorted(kinds_here)} cannot run as one batch")
        fn, _load = _handler_for(jobs[0].kind)
        load_many, can_batch = _batchers[jobs[0].kind]
        with batching.deferred() as batch:
            objs = load_many([job.target_id for job in jobs])
            runnable = []
            for job in jobs:
                obj = objs.get(job.target_id)
                if obj is not None and not can_batch(obj, job):
                    alone.append(job.pk)
                else:
                    runnable.append((obj, job))
            # Marked done by the flush, ahead of the rest (`apply_deferred`): rolled back with
            # everything if anything fails.
            batch.finished = [job.pk for _obj, job in runnable]
            batch.running = {
                (job.kind, job.target_id)
                for _obj, job in runnable
                if job.status == JobStatus.PENDING
            }
            for obj, job in runnable:
                if obj is not None:
                    fn(obj, job)
        return len(batch.finished)


def _record_failure(job_id: int, error: str) -> None:
    """The handler raised: its work was rolled back. Try again later, or give up and say why."""
    log.error("due job %s failed:\n%s", job_id, error)
    with transaction.atomic():
        job = DueJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in (JobStatus.PENDING, JobStatus.QUEUED):
            return
        job.attempts += 1
        job.last_error = error[-4000:]
        if job.attempts >= MAX_ATTEMPTS:
            job.status = JobStatus.FAILED
            job.finished_at = timezone.now()
        else:
            job.status = JobStatus.PENDING
            if job.test_clock_id is None:
                job.due_at = timezone.now() + RETRY_BACKOFF * job.attempts
        job.save()


def claim_due(now=None, *, limit: int = 500) -> list[int]:
    """Claim wall-clock jobs that are due (and ones whose worker vanished); return their ids.

    Each claim is a conditional update that only one caller can win, so concurrent ticks on
    several machines never hand out the same job twice.
    """
    now = now or timezone.now()
    candidates = list(
        DueJob.objects.filter(status=JobStatus.PENDING, test_clock__isnull=True, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    stale = list(
        DueJob.objects.filter(
            status=JobStatus.QUEUED, test_clock__isnull=True, queued_at__lt=now - STALE_AFTER
        ).values_list("id", flat=True)[:limit]
    )
    claimed = []
    for job_id in candidates:
        won = DueJob.objects.filter(pk=job_id, status=JobStatus.PENDING).update(
            status=JobStatus.QUEUED, queued_at=now
        )
        if won:
            claimed.append(job_id)
    for job_id in stale:
        won = DueJob.objects.filter(
            pk=job_id, status=JobStatus.QUEUED, queued_at__lt=now - STALE_AFTER
        ).update(queued_at=now)
        if won:
            claimed.append(job_id)
    return claimed


def tick() -> int:
    """Hand every due wall-clock job to a worker. Called by the django-q2 schedule.

    Jobs of a kind that runs in batches go to workers in groups of up to BATCH_SIZE.
    """
    from django_q.tasks import async_task

    claimed = claim_due()
    groups: dict[str, list[int]] = {}
    for job_id, kind in (
        DueJob.objects.filter(pk__among=claimed).order_by("id").values_list("id", "kind")
    ):
        if kind in _batchers and BATCH_SIZE > 1:
            groups.setdefault(kind, []).append(job_id)
        else:
            async_task("billing.tasks.run_due_job", job_id)
    for ids in groups.values():
        for start in range(0, len(ids), BATCH_SIZE):
            async_task("billing.tasks.run_due_jobs", ids[start : start + BATCH_SIZE])
    return len(claimed)


def _next_group(clock_id: str, job: DueJob, limit: int) -> list[int]:
    """`job` and the jobs right after it in (due_at, id) order that share its time and kind, at
    most `limit`."""
    if job.kind not in _batchers or BATCH_SIZE <= 1:
        return [job.pk]
    following = DueJob.objects.filter(
        test_clock_id=clock_id,
        status__in=[JobStatus.PENDING, JobStatus.QUEUED],
        due_at=job.due_at,
        id__gte=job.pk,
    ).order_by("id")
    group = []
    for job_id, kind in following.values_list("id", "kind")[:limit]:
        if kind != job.kind:
            break
        group.append(job_id)
    return group


def _run_crowd(clock_id: str, frozen_time, group: list[int], helpers: str | None) -> None:
    """Run jobs of one kind due at one instant, in batches; with `helpers`, side by side.

    Jobs due at the same instant may run in any order, as wall time runs them (`tick` hands
    each batch to whichever worker is free). With helpers — the name of a django-q2 cluster
    whose workers are free to help — every batch is also queued for them: they take batches
    from the front while this process works from the back. A batch is all or nothing and locks
    its jobs' rows, so one that a helper is running is waited for, then found done; one that
    this process ran first is found done by the helper. Either way each job runs once, every
    batch of the instant has run when this returns, and with no helper free (a busy or
    stopped cluster) this process simply runs them all."""
    batches = [group[start : start + BATCH_SIZE] for start in range(0, len(group), BATCH_SIZE)]
    if helpers and len(batches) > 1:
        from django_q.tasks import async_task

        try:
            for ids in batches[:-1]:
                async_task(
                    "billing.tasks.run_clock_jobs",
                    clock_id,
                    frozen_time.isoformat(),
                    ids,
                    cluster=helpers,
                )
        except Exception:
            # The queue is out of reach (a Redis broker down): this process runs the crowd
            # alone. Raising would leave no job failed, and the clock would try again forever.
            log.exception("could not hand batches of test clock %s to helpers", clock_id)
    for ids in reversed(batches):
        if len(ids) > 1:
            run_many(ids)
        else:
            run(ids[0])


def run_clock_jobs(clock_id: str, frozen_time, job_ids: list[int]) -> int:
    """A batch of a clock's jobs due at `frozen_time`, run by a helper (`_run_crowd`), at that
    time. Jobs already run (by the advancing process, or before a retry) are skipped."""
    with clocks.running(clock_id, frozen_time):
        return run_many(job_ids) if len(job_ids) > 1 else int(run(job_ids[0]))


def advance_clock(
    clock_id: str, *, helpers: str | None = None, budget: float | None = None
) -> bool:
    """Run a test clock's due jobs up to its `advancing_to`, in time order, then mark it ready.

    `frozen_time` moves to each job's due time before the job runs, so everything the job does
    happens "then" (SPEC R-CLOCK-2). Jobs that a job schedules within the window run too.
    `helpers` names a django-q2 cluster whose workers run batches of a crowd side by side with
    this process (`_run_crowd`).

    With a `budget` (seconds), it stops once that much time has gone and at least one crowd
    has run, and returns False: the clock is still advancing, and calling again goes on from
    there (what has run is committed). True once the clock is ready (or was not advancing).
    """

    clock = TestClock.objects.get(pk=clock_id)
    target = clock.advancing_to
    if clock.status != TestClockStatus.ADVANCING or target is None:
        return True
    try:
        return _advance_to(clock, target, helpers, budget)
    except Exception:
        # Not a job's failure (those are recorded on the job and the clock goes on): the advance
        # itself broke. Say so on the clock, as Stripe's `internal_failure`, rather than leave it
        # advancing forever; advancing it again resumes from where it stopped.
        log.exception("test clock %s failed while advancing", clock_id)
        _mark_internal_failure(clock_id)
        raise


def _mark_internal_failure(clock_id: str) -> None:
    from billing import events

    with transaction.atomic():
        clock = TestClock.objects.select_for_update().filter(pk=clock_id).first()
        if clock is None or clock.status != TestClockStatus.ADVANCING:
            return
        clock.status = TestClockStatus.INTERNAL_FAILURE
        clock.advancing_to = None
        clock.save(update_fields=["status", "advancing_to"])
        events.emit("test_helpers.test_clock.internal_failure", clock)


def _advance_to(clock: TestClock, target, helpers: str | None, budget: float | None) -> bool:
    from billing import events

    clock_id = clock.pk
    deadline = None if budget is None else time.monotonic() + budget
    ran = False
    while True:
        if ran and deadline is not None and time.monotonic() >= deadline:
            return False
        job = (
            DueJob.objects.filter(
                test_clock_id=clock_id,
                status__in=[JobStatus.PENDING, JobStatus.QUEUED],
                due_at__lte=target,
            )
            .order_by("due_at", "id")
            .first()
        )
        if job is None:
            break
        if job.due_at > clock.frozen_time:
            TestClock.objects.filter(pk=clock_id).update(frozen_time=job.due_at)
            clock.frozen_time = job.due_at
        # A failure is recorded on the job by run(). A clock job keeps its due time, so the loop
        # tries it again at once, until MAX_ATTEMPTS marks it failed; the simulation goes on.
        with contextlib.suppress(Exception), clocks.running(clock_id, clock.frozen_time):
            limit = BATCH_SIZE * (CROWD_BATCHES if helpers else 1)
            _run_crowd(clock_id, clock.frozen_time, _next_group(clock_id, job, limit), helpers)
        ran = True
    with transaction.atomic():
        clock = TestClock.objects.select_for_update().get(pk=clock_id)
        clock.frozen_time = max(clock.frozen_time, target)
        clock.status = TestClockStatus.READY
        clock.advancing_to = None
        clock.save(update_fields=["frozen_time", "status", "advancing_to"])
        events.emit("test_helpers.test_clock.ready", clock)
    return True
