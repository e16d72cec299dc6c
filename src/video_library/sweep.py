"""The sweep: background work that lost its driver is found and finished, on a schedule.

Every save and every deletion is driven by something that can fail on its own — a queue message that is lost,
a worker killed at its timeout, an R2 delete refused. The record always says what is pending (it is in the sparse
``pending_work`` index from the moment the work starts until it is done), so a scheduled run reads only that
index — its work grows with what is pending, never with the table or the bucket — and for each record:

- a save queued or running with no live lease and no sign of life for ``STALLED_AFTER`` is queued again (a new
  message), or marked failed once it has had all its attempts;
- a failed save whose leftovers were not confirmed gone: the sweep takes its lease, aborts any unfinished upload
  and deletes any object at its key, then takes it out of the index;
- a deletion that stopped half-way (R2 refused) is finished: objects first, then the record.

Then it aborts multipart uploads older than ``UPLOAD_GRACE`` whose video holds no live lease — no attempt can
still be using them, a Lambda lives at most 15 minutes — a net under the per-key aborts of the worker, beside the
bucket's lifecycle rule. (The lease check also keeps a live upload safe where ``Initiated`` cannot be trusted:
moto reports a fixed date.)

Why no listing of the bucket for "unrecorded objects": nothing writes an object except a transfer under a
record's lease, at that record's deterministic key, and a record leaves the pending index only once its object
is recorded or confirmed gone. An object no record names cannot arise; a bucket listing would cost work in
proportion to everything ever saved, every run.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from video_library import db, deletion, save_queue
from video_library.deadline import Deadline
from video_library.errors import OutOfTime, ServiceNotConfigured, StorageUnavailable
from video_library.lease import LEASE_TTL
from video_library.observability import MetricUnit, logger, metrics
from video_library.r2 import r2_transfer_client
from video_library.save_queue import SaveMessage
from video_library.save_state import STALLED_AFTER, SaveState
from video_library.settings import get_settings
from video_library.upload import abort_upload

# Work younger than this is left to its driver (a message in flight, a worker starting).
PENDING_GRACE = timedelta(minutes=2)
# Multipart uploads older than this belong to no live attempt.
UPLOAD_GRACE = timedelta(hours=1)
RECORDS_PER_SHARD = 200
STOP_MARGIN_MS = 20_000
UPLOAD_PREFIX = "campaigns/"
VIDEO_KEY = re.compile(r"campaigns/[^/]+/videos/(?P<video_id>[^/]+)\.mp4")


class SweepSummary(BaseModel):
    examined: int = 0
    saves_requeued: int = 0
    saves_failed: int = 0
    leftovers_removed: int = 0
    deletions_finished: int = 0
    unfinished: int = 0
    multipart_uploads_aborted: int = 0
    complete: bool = True


def run_sweep(now: datetime, remaining_ms: Callable[[], int]) -> SweepSummary:
    summary = SweepSummary()

    def out_of_time() -> bool:
        if remaining_ms() < STOP_MARGIN_MS:
            summary.complete = False
            return True
        return False

    for shard in range(db.PURGE_INDEX_SHARDS):
        keys = db.pending_work(str(shard), before=now - PENDING_GRACE, limit=RECORDS_PER_SHARD)
        if len(keys) == RECORDS_PER_SHARD:
            summary.complete = False
        for key in keys:
            if out_of_time():
                break
            summary.examined += 1
            try:
                _settle(key.video_id, summary)
            except db.Throttled:
                summary.unfinished += 1
    if not out_of_time():
        _abort_old_uploads(now, summary, remaining_ms)
    for name in (
        "saves_requeued",
        "saves_failed",
        "leftovers_removed",
        "deletions_finished",
        "multipart_uploads_aborted",
    ):
        metrics.add_metric(
            name=f"Sweep{name.title().replace('_', '')}", unit=MetricUnit.Count, value=getattr(summary, name)
        )
    logger.info("sweep finished", extra=summary.model_dump())
    return summary


def _settle(video_id: str, summary: SweepSummary) -> None:
    record = db.get_video(video_id, consistent=True)
    now = db.utcnow()
    if record is None or record.lease_is_live(now):
        return  # gone, or someone is at work on it
    if record.deleting_at is not None:
        outcome = deletion.delete_video(video_id, now)
        if outcome is deletion.DeletionOutcome.DELETED:
            summary.deletions_finished += 1
        elif outcome is deletion.DeletionOutcome.UNFINISHED:
            summary.unfinished += 1
        return
    state = record.save_status
    if state is SaveState.SAVED:
        db.clear_pending_if_saved(video_id)
    elif state.in_progress and record.save_stalled(now, STALLED_AFTER):
        _restart_or_fail(record, now, summary)
    elif state is SaveState.FAILED:
        _remove_leftovers(record, now, summary)


def _restart_or_fail(record: db.VideoRecord, now: datetime, summary: SweepSummary) -> None:
    attempts = int(record.save_attempts or 0)
    if attempts >= get_settings().save_max_attempts:
        message = f"the save stopped after {attempts} attempts: {record.save_error or 'no attempt finished'}"
        if db.fail_stalled_save(record.video_id, "gave_up", message, now):
            summary.saves_failed += 1
            logger.warning("stalled save failed", extra={"video_id": record.video_id, "attempts": attempts})
        return
    if not db.requeue_stalled_save(record.video_id, now - STALLED_AFTER, now):
        return
    if save_queue.send([SaveMessage(video_id=record.video_id, requested_at=now)]):
        # Not sent: the record says queued with a fresh time; the next sweep tries again after STALLED_AFTER.
        logger.error("the save queue refused a restarted save", extra={"video_id": record.video_id})
        summary.unfinished += 1
        return
    summary.saves_requeued += 1
    logger.warning("stalled save queued again", extra={"video_id": record.video_id, "attempts": attempts})


def _remove_leftovers(record: db.VideoRecord, now: datetime, summary: SweepSummary) -> None:
    lease_id = uuid.uuid4().hex
    claimed = db.claim_cleanup(record.video_id, lease_id, now + LEASE_TTL, now)
    if claimed is None:
        return
    try:
        deletion.remove_objects(claimed.campaign_id, claimed.video_id, Deadline.after(LEASE_TTL.total_seconds() / 2))
    except (StorageUnavailable, OutOfTime, ServiceNotConfigured) as exc:
        db.release_lease(record.video_id, lease_id)
        summary.unfinished += 1
        logger.warning(
            "could not remove a failed save's leftovers", extra={"video_id": record.video_id, "reason": exc.message}
        )
        return
    if db.cleanup_done(record.video_id, lease_id):
        summary.leftovers_removed += 1


def _held_by_a_live_lease(key: str) -> bool:
    """Whether the record whose key this is holds a live lease (a transfer may still be using the upload)."""
    found = VIDEO_KEY.fullmatch(key)
    record = db.get_video(found.group("video_id"), consistent=True) if found else None
    return record is not None and record.lease_is_live(db.utcnow())


def _abort_old_uploads(now: datetime, summary: SweepSummary, remaining_ms: Callable[[], int]) -> None:
    try:
        client = r2_transfer_client()
    except ServiceNotConfigured:
        return
    bucket = get_settings().r2_bucket
    cutoff = now - UPLOAD_GRACE
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": UPLOAD_PREFIX}
    while remaining_ms() >= STOP_MARGIN_MS:
        try:
            page: Any = client.list_multipart_uploads(**request)
        except Exception:
            logger.warning("could not list unfinished multipart uploads", exc_info=True)
            summary.complete = False
            return
        for upload in page.get("Uploads", []):
            if upload["Initiated"] >= cutoff or _held_by_a_live_lease(upload["Key"]):
                continue
            if abort_upload(client, bucket, upload["Key"], upload["UploadId"]):
                summary.multipart_uploads_aborted += 1
                logger.info("old multipart upload aborted", extra={"key": upload["Key"]})
        if not page.get("IsTruncated"):
            return
        request.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])
    summary.complete = False
