"""Deleting a video — by the purge, by its owner, or by the sweep finishing either — without losing track of
anything in R2.

A record that never had a save started cannot have anything in R2: it is deleted in one conditional write. Any
other goes in three steps, so that no ordering of failures leaves an object nobody can find:

1. the record is marked ``deleting`` under a lease (a conditional write: no save may be queued or running);
   from then on no save can start, the API treats it as gone, and it is in the background-work index;
2. its objects go (the video and its thumbnail, at the keys the record names) and any unfinished multipart
   upload at those keys is aborted;
3. the record is deleted, if our lease still holds it.

Each record deletion is one transaction with the usage counters it was counted in (``db``, ``usage``): the
videos, and for a saved video its bytes, are taken off exactly once, when the record goes.

If R2 refuses step 2 the record stays marked, and the sweep (or the next purge) does steps 2 and 3 again: the
object is never orphaned, as it would be if the record went first.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from pynamodb.expressions.condition import Condition

from video_library import db
from video_library.deadline import Deadline
from video_library.errors import OutOfTime, ServiceNotConfigured, StorageUnavailable
from video_library.observability import logger
from video_library.r2 import object_keys_of, r2_transfer_client, video_object_key
from video_library.settings import get_settings
from video_library.upload import abort_unfinished_uploads, delete_objects

# How long a deletion holds the record: long enough for a few R2 requests with retries.
DELETION_LEASE = timedelta(minutes=2)
# R2 work of one deletion must end this long before its lease does.
DELETION_MARGIN_S = 30.0


class DeletionOutcome(StrEnum):
    DELETED = "deleted"
    KEPT = "kept"  # the condition does not hold (saved, a save queued or running, a live lease, not the owner)
    UNFINISHED = "unfinished"  # marked, but R2 (or the final write) failed: the sweep finishes it


def delete_video(video_id: str, now: datetime, condition: Condition | None = None) -> DeletionOutcome:
    """Delete ``video_id`` and everything it has in R2, if ``condition`` (and the rules above) allow it now.

    Raises :class:`db.Throttled` when DynamoDB throttles; R2's failures make the outcome UNFINISHED."""
    if db.delete_if_never_saved(video_id, now, condition):
        return DeletionOutcome.DELETED
    lease_id = uuid.uuid4().hex
    record = db.begin_deletion(video_id, lease_id, now + DELETION_LEASE, now, condition)
    if record is None:
        return DeletionOutcome.KEPT
    return finish(record, lease_id)


def finish(record: db.VideoRecord, lease_id: str) -> DeletionOutcome:
    """Steps 2 and 3 for a record marked ``deleting`` under ``lease_id``."""
    limit = Deadline.after(DELETION_LEASE.total_seconds() - DELETION_MARGIN_S)
    try:
        remove_objects(record.campaign_id, record.video_id, limit)
    except (StorageUnavailable, OutOfTime, ServiceNotConfigured) as exc:
        logger.warning(
            "a deletion could not remove its objects; it will be finished later",
            extra={"video_id": record.video_id, "reason": exc.message},
        )
        return DeletionOutcome.UNFINISHED
    if not db.finish_deletion(record, lease_id):
        return DeletionOutcome.UNFINISHED
    return DeletionOutcome.DELETED


def remove_objects(campaign_id: str, video_id: str, limit: Deadline) -> None:
    """Abort unfinished uploads at the video's key and delete its objects (the video, its thumbnail);
    StorageUnavailable if R2 refuses. (Only the video is ever uploaded in parts.)"""
    client = r2_transfer_client()
    bucket = get_settings().r2_bucket
    keys = object_keys_of(campaign_id, video_id)
    if limit.remaining() <= 0:
        raise StorageUnavailable("no time left to delete the objects")
    try:
        abort_unfinished_uploads(client, bucket, video_object_key(campaign_id, video_id))
    except Exception as exc:
        raise StorageUnavailable(f"R2 could not list the unfinished uploads ({type(exc).__name__})") from exc
    delete_objects(client, bucket, keys, limit)
