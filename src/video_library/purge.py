"""The purge: previews nobody saved are deleted once they are ``PURGE_AFTER_DAYS`` old.

A run is started by a scheduled EventBridge event, whose ``time`` is "now": the cutoff is that time minus
the retention, so a replayed event, a manual invocation and the tests all decide what "now" is.

How a run stays safe and cheap:

- It reads only the sparse ``unsaved_by_age`` index (every shard, oldest first, page by page): a saved record
  has no ``purge_shard`` and is not in it, so the work grows with what is expired, not with the table.
- Every delete is conditional (``deletion.delete_video``): a record saved, with a save queued or running, or
  held by a live lease between the query and the delete is kept and counted as kept. The index is also
  eventually consistent; the condition is checked on the table itself, so a stale index entry can never delete
  a saved video.
- A preview that never had a save started goes in one conditional delete. One that did may have left something
  in R2 (an attempt killed between upload and record): it is marked ``deleting`` first, its objects go, then the
  record — so when R2 refuses a delete the record stays (``unfinished``), and the next run or the sweep finishes
  it. An object is never left without the record that names it.
- It stops, cleanly, when the Lambda has little time left or ``max_items`` are done, and says
  ``complete: false``. No cursor is kept: the index holds only what is left, so the next run starts over
  from the beginning and finds exactly the rest.

Anything but a lost condition or an R2 refusal (a DynamoDB error, throttling that outlasts the backoff) fails
the run loudly: the invocation raises, Lambda retries it, and what still fails lands in the dead-letter queue.
R2 refusals are counted (``unfinished``) and make the run incomplete; nothing is lost by them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from video_library import db, deletion
from video_library.deletion import DeletionOutcome
from video_library.errors import BadRequest
from video_library.observability import MetricUnit, logger, metrics
from video_library.settings import get_settings

# EventBridge stamps a scheduled event with the time it was due, so it is never ahead of the clock by more
# than clock skew. An event dated further ahead is someone's choice (the local stack's demo purges "31 days
# from now"), honoured but logged as a warning: in production it purges previews younger than the retention.
MAX_EVENT_CLOCK_SKEW = timedelta(minutes=5)


class InvalidPurgeEvent(BadRequest):
    """The event does not say when "now" is, or asks for something the purge does not understand."""

    code = "invalid_purge_event"


class PurgeOptions(BaseModel):
    """The event's ``detail``: empty for the daily schedule; options for a manual run.

    Unknown keys and loose types are refused rather than ignored: ``{"dryrun": true}`` or
    ``{"dry_run": "false"}`` must not turn into a run that deletes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: StrictBool = False
    # At most this many deletions in the run (in a dry run: records counted); unbounded when absent.
    max_items: StrictInt | None = Field(default=None, ge=1)


class PurgeRequest(BaseModel):
    """What one run is asked to do, read from an EventBridge (scheduled) event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    time: AwareDatetime
    detail: PurgeOptions = Field(default_factory=PurgeOptions)

    @classmethod
    def from_event(cls, event: Any) -> PurgeRequest:
        """Parse the event; :class:`InvalidPurgeEvent` (nothing is purged) when it is malformed."""
        try:
            request = cls.model_validate(event)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'event'}: {error['msg']}" for error in exc.errors()
            )
            raise InvalidPurgeEvent(f"not a purge event ({problems})") from exc
        return request


class PurgeSummary(BaseModel):
    """What a run did. ``examined``: records it decided on (in a dry run: how many a real run would try to
    delete); ``kept``: records saved or being saved when their delete came; ``unfinished``: records whose R2
    objects could not be deleted (still there, marked, finished by a later run or the sweep); ``complete``:
    nothing is left."""

    cutoff: datetime
    examined: int
    deleted: int
    kept: int
    unfinished: int = 0
    dry_run: bool
    complete: bool

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class PurgeLimits:
    """How hard a run pushes. The defaults suit a 900 s Lambda with 256 MB against on-demand DynamoDB."""

    # Records per index query; a page is decided as a whole before the next is read. A page of keys and
    # campaign ids is ~120 KB, well under the 1 MB a Query returns at most.
    page_size: int = 1000
    # Concurrent deletes. The model's connection pool (VideoRecord.Meta.max_pool_connections) is larger.
    workers: int = 16
    # Stop starting new work when the Lambda has less than this left: room for in-flight deletes and the
    # summary, so the run ends with an answer rather than a timeout.
    time_margin_ms: int = 15_000
    # Our own retries of a throttled delete, on top of botocore's: under sustained throttling botocore's
    # retry quota runs dry across 16 threads and errors surface at once.
    throttle_retries: int = 6
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 5.0


DEFAULT_LIMITS = PurgeLimits()


class _Outcome(StrEnum):
    DELETED = "deleted"
    KEPT = "kept"
    UNFINISHED = "unfinished"
    NOT_REACHED = "not_reached"  # the run stopped (time, or another delete failed) before deciding


_OUTCOMES = {
    DeletionOutcome.DELETED: _Outcome.DELETED,
    DeletionOutcome.KEPT: _Outcome.KEPT,
    DeletionOutcome.UNFINISHED: _Outcome.UNFINISHED,
}


@dataclass
class _Tally:
    examined: int = 0
    deleted: int = 0
    kept: int = 0
    unfinished: int = 0


class _PurgeRun:
    def __init__(
        self,
        cutoff: datetime,
        options: PurgeOptions,
        remaining_ms: Callable[[], int],
        limits: PurgeLimits,
    ) -> None:
        self.cutoff = cutoff
        self.options = options
        self.tally = _Tally()
        self._remaining_ms = remaining_ms
        self._limits = limits
        # Set when the run must stop starting deletes: out of time, or a delete failed.
        self._stopping = threading.Event()
        # Jitter, not security: a predictable generator is fine.
        self._jitter = random.Random()  # noqa: S311

    def execute(self) -> bool:
        """Walk every shard; True when the run finished the job."""
        if self.options.dry_run:
            return self._walk(self._count_page)
        with ThreadPoolExecutor(max_workers=self._limits.workers, thread_name_prefix="purge") as pool:
            return self._walk(lambda page: self._delete_page(pool, page))

    def _out_of_time(self) -> bool:
        if self._stopping.is_set():
            return True
        if self._remaining_ms() <= self._limits.time_margin_ms:
            self._stopping.set()
            return True
        return False

    def _walk(self, process_page: Callable[[list[db.VideoRecord]], bool]) -> bool:
        # The first query runs on this thread, before any delete is handed to the pool: it creates the
        # model's shared connection and botocore client, whose lazy creation is not thread-safe.
        shards = [str(shard) for shard in range(db.PURGE_INDEX_SHARDS)]
        for position, shard in enumerate(shards):
            start_after: dict[str, Any] | None = None
            while True:
                if self._out_of_time():
                    return False
                budget = self._items_left()
                if budget == 0:
                    return not self._anything_left(shards[position:], start_after)
                page, start_after = db.expired_unsaved(
                    shard, self.cutoff, page_size=min(self._limits.page_size, budget), start_after=start_after
                )
                if not process_page(page):
                    return False
                if start_after is None:
                    break
        return True

    def _items_left(self) -> int:
        if self.options.max_items is None:
            return self._limits.page_size
        # A real run counts what it deleted, not what it examined: records kept by a live save stay in the
        # index, and a bound that counted them could keep every run stuck behind them.
        done = self.tally.examined if self.options.dry_run else self.tally.deleted
        return self.options.max_items - done

    def _anything_left(self, shards: Sequence[str], start_after: dict[str, Any] | None) -> bool:
        """Whether an expired record remains past this point (the first shard resumes at ``start_after``)."""
        for shard in shards:
            page, _ = db.expired_unsaved(shard, self.cutoff, page_size=1, start_after=start_after)
            if page:
                return True
            start_after = None
        return False

    def _count_page(self, page: list[db.VideoRecord]) -> bool:
        self.tally.examined += len(page)
        return True

    def _delete_page(self, pool: ThreadPoolExecutor, page: list[db.VideoRecord]) -> bool:
        """Decide every record of the page concurrently; False if the run had to stop before deciding some
        of them. (Unfinished deletions do not stop the run: they are counted, and the run is not complete.)"""
        decisions: list[Future[_Outcome]] = [pool.submit(self._decide, record) for record in page]
        wait(decisions)
        decided: dict[_Outcome, list[str]] = {outcome: [] for outcome in _Outcome}
        failures: list[BaseException] = []
        for record, decision in zip(page, decisions, strict=True):
            error = decision.exception()
            if error is not None:
                failures.append(error)
            else:
                decided[decision.result()].append(record.video_id)
        deleted, kept, unfinished = decided[_Outcome.DELETED], decided[_Outcome.KEPT], decided[_Outcome.UNFINISHED]
        self.tally.deleted += len(deleted)
        self.tally.kept += len(kept)
        self.tally.unfinished += len(unfinished)
        self.tally.examined += len(deleted) + len(kept) + len(unfinished)
        if deleted or kept or unfinished:
            # The ids make the log an audit trail: "where did my video go" has an answer.
            logger.info("purge page", extra={"deleted": deleted, "kept": kept, "unfinished": unfinished})
        if failures:
            raise failures[0]
        return not decided[_Outcome.NOT_REACHED]

    def _decide(self, record: db.VideoRecord) -> _Outcome:
        """Runs on a pool thread: delete one record if it is still unsaved and not being saved."""
        try:
            if self._out_of_time():
                return _Outcome.NOT_REACHED
            outcome = self._delete_with_backoff(record.video_id)
        except BaseException:
            self._stopping.set()  # the run fails: start no more deletes
            raise
        return _Outcome.NOT_REACHED if outcome is None else outcome

    def _delete_with_backoff(self, video_id: str) -> _Outcome | None:
        """``deletion.delete_video`` of one unsaved record, retrying throttling with capped exponential backoff
        and full jitter. None when the run ran out of time while backing off (the record is left for the next
        run)."""
        limits = self._limits
        retries = 0
        table = db.VideoRecord
        still_unsaved = table.purge_shard.exists() & (table.saved_to_r2 == False)  # noqa: E712
        while True:
            try:
                # A save lease is live until its expiry on the real clock, whatever the event's time says.
                return _OUTCOMES[deletion.delete_video(video_id, db.utcnow(), still_unsaved)]
            except db.Throttled:
                if retries == limits.throttle_retries:
                    raise
            delay = self._jitter.uniform(0, min(limits.backoff_cap_s, limits.backoff_base_s * 2**retries))
            retries += 1
            if self._stopping.wait(delay) or self._out_of_time():
                return None


def purge_expired_previews(
    request: PurgeRequest, *, remaining_ms: Callable[[], int], limits: PurgeLimits | None = None
) -> PurgeSummary:
    """Delete the records never saved that were created strictly before the request's time minus the
    retention, with their R2 objects; return (and log) what was done."""
    settings = get_settings()
    cutoff = (request.time - timedelta(days=settings.purge_after_days)).astimezone(UTC)
    options = request.detail
    logger.info(
        "purge started",
        extra={"event_time": request.time.isoformat(), "cutoff": cutoff.isoformat(), **options.model_dump()},
    )
    if request.time > db.utcnow() + MAX_EVENT_CLOCK_SKEW:
        logger.warning("the event's time is in the future: previews younger than the retention are purged")
    run = _PurgeRun(cutoff, options, remaining_ms, limits or DEFAULT_LIMITS)
    try:
        complete = run.execute()
    except Exception:
        logger.exception("purge failed", extra={"cutoff": cutoff.isoformat(), **vars(run.tally)})
        raise
    finally:
        metrics.add_metric(name="VideosPurged", unit=MetricUnit.Count, value=run.tally.deleted)
        metrics.add_metric(name="VideosPurgeKept", unit=MetricUnit.Count, value=run.tally.kept)
        metrics.add_metric(name="VideosPurgeUnfinished", unit=MetricUnit.Count, value=run.tally.unfinished)
    complete = complete and run.tally.unfinished == 0
    # 1 for a run that left work for the next one: an alarm watches it (a backlog the daily run cannot clear).
    metrics.add_metric(name="PurgeRunsIncomplete", unit=MetricUnit.Count, value=0 if complete else 1)
    summary = PurgeSummary(cutoff=cutoff, dry_run=options.dry_run, complete=complete, **vars(run.tally))
    logger.info("purge finished", extra=summary.as_dict())
    return summary
