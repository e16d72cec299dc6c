"""Data access for video records: the PynamoDB model, its indexes, and every state change.

Every read is a GetItem or a Query on an index (never a Scan) and every state change is one conditional
write, so concurrent Lambdas cannot lose an update or move a status backwards. SDK errors become results
or domain errors here; nothing above this module sees PynamoDB's exceptions.

The model's table name and endpoint come from the settings when the first operation runs, not at import.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition, Or
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from video_library.cursor import BadCursor as BadCursor
from video_library.cursor import decode_cursor, encode_cursor
from video_library.models import NewVideo, TaskProgress
from video_library.settings import Settings, get_settings
from video_library.status import VideoStatus

CONDITION_FAILED = "ConditionalCheckFailedException"
# What DynamoDB answers when it throttles a request (capacity, partition or account limits).
THROTTLING_ERRORS = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})

# The purge index's partition key is spread over a few values so that no single index partition takes
# every new video's write; the purge queries each shard. Changing this number re-shards existing records
# only as they are written again, so it is a constant, not a setting.
PURGE_INDEX_SHARDS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


def purge_shard_of(video_id: str) -> str:
    return str(zlib.crc32(video_id.encode()) % PURGE_INDEX_SHARDS)


def user_campaign_key(user_id: str, campaign_id: str) -> str:
    return f"{user_id}#{campaign_id}"


class ByTaskIndex(GlobalSecondaryIndex["VideoRecord"]):
    """The webhook finds a record by PiAPI's task id."""

    class Meta:
        index_name = "by_task_id"
        projection = KeysOnlyProjection()

    task_id = UnicodeAttribute(hash_key=True)


class ByUserIndex(GlobalSecondaryIndex["VideoRecord"]):
    """A user's videos, newest first."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByUserCampaignIndex(GlobalSecondaryIndex["VideoRecord"]):
    """A user's videos in one campaign, newest first."""

    class Meta:
        index_name = "by_user_campaign"
        projection = AllProjection()

    user_campaign = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class UnsavedByAgeIndex(GlobalSecondaryIndex["VideoRecord"]):
    """Sparse: only records never saved carry ``purge_shard``, so the purge reads only what it may delete.

    ``campaign_id`` is projected so the purge can find the object key of a save that crashed half-way.
    """

    class Meta:
        index_name = "unsaved_by_age"
        projection = IncludeProjection(["campaign_id"])

    purge_shard = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class InFlightByAgeIndex(GlobalSecondaryIndex["VideoRecord"]):
    """Sparse: only records still ``pending`` or ``processing`` carry ``in_flight_shard``, so reconciliation
    (asking PiAPI about tasks whose webhook never came) reads only those. ``task_id`` is projected for it."""

    class Meta:
        index_name = "in_flight_by_age"
        projection = IncludeProjection(["task_id"])

    in_flight_shard = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class VideoRecord(Model):
    """One generated video."""

    class Meta:
        table_name = "videos"  # replaced from the settings by bind()
        region = "us-east-1"
        host: str | None = None
        billing_mode = PAY_PER_REQUEST_BILLING_MODE
        connect_timeout_seconds = 3
        read_timeout_seconds = 10
        max_retry_attempts = 5
        # The purge deletes from a thread pool; each thread needs its own pooled connection.
        max_pool_connections = 32

    video_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    user_campaign = UnicodeAttribute()
    provider = UnicodeAttribute(null=True)
    model = UnicodeAttribute(null=True)
    task_type = UnicodeAttribute(null=True)
    task_id = UnicodeAttribute(null=True)
    prompt = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default=VideoStatus.PENDING.value)
    error = UnicodeAttribute(null=True)

    # What the UI plays and downloads: the provider's URLs until saved, R2's after.
    video_url = UnicodeAttribute(null=True)
    video_raw_url = UnicodeAttribute(null=True)
    # The provider's own URLs, kept as they were delivered.
    provider_video_url = UnicodeAttribute(null=True)
    provider_video_raw_url = UnicodeAttribute(null=True)
    thumbnail_url = UnicodeAttribute(null=True)
    cost_points = NumberAttribute(null=True)
    cost_usd = NumberAttribute(null=True)

    saved_to_r2 = BooleanAttribute(default=False)
    r2_key = UnicodeAttribute(null=True)
    size_bytes = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    saved_at = UTCDateTimeAttribute(null=True)
    # A save in progress holds a lease: one transfer per video, and the purge keeps a record being saved.
    save_lease_id = UnicodeAttribute(null=True)
    save_lease_expires_at = UTCDateTimeAttribute(null=True)
    save_error = UnicodeAttribute(null=True)  # why the last save failed; cleared by a successful save

    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)

    # Key of the purge index; present only while the video is not saved.
    purge_shard = UnicodeAttribute(null=True)
    # Key of the reconciliation index; present only while the video is pending or processing.
    in_flight_shard = UnicodeAttribute(null=True)

    by_task_id = ByTaskIndex()
    by_user = ByUserIndex()
    by_user_campaign = ByUserCampaignIndex()
    unsaved_by_age = UnsavedByAgeIndex()
    in_flight_by_age = InFlightByAgeIndex()

    @property
    def video_status(self) -> VideoStatus:
        return VideoStatus(self.status)


_bound_to: Settings | None = None


def bind(settings: Settings | None = None) -> type[VideoRecord]:
    """Point the model at the configured table and endpoint (again, if the settings object changed)."""
    global _bound_to
    settings = settings or get_settings()
    if _bound_to is not settings:
        VideoRecord.Meta.table_name = settings.videos_table
        VideoRecord.Meta.region = settings.aws_region
        VideoRecord.Meta.host = settings.dynamodb_endpoint_url
        VideoRecord._connection = None
        _bound_to = settings
    return VideoRecord


def create_tables(settings: Settings | None = None, *, wait: bool = True) -> None:
    """Create the video table with its indexes if it does not exist (idempotent)."""
    table = bind(settings)
    if not table.exists():
        table.create_table(wait=wait, billing_mode=PAY_PER_REQUEST_BILLING_MODE)


def new_video_id() -> str:
    return uuid.uuid4().hex


def create_video(new: NewVideo) -> VideoRecord:
    """Store a new record under a fresh id; it enters the purge index until it is saved."""
    table = bind()
    now = utcnow()
    video_id = new_video_id()
    record = table(
        video_id,
        user_id=new.user_id,
        campaign_id=new.campaign_id,
        user_campaign=user_campaign_key(new.user_id, new.campaign_id),
        provider=new.provider,
        model=new.model,
        task_type=new.task_type,
        task_id=new.task_id,
        prompt=new.prompt,
        status=new.status.value,
        saved_to_r2=False,
        created_at=new.created_at or now,
        updated_at=now,
        purge_shard=purge_shard_of(video_id),
        in_flight_shard=None if new.status.is_terminal else purge_shard_of(video_id),
    )
    try:
        record.save(condition=table.video_id.does_not_exist())
    except PutError as exc:  # a uuid4 collision is not expected; never overwrite whatever is there
        raise RuntimeError(f"could not create video {video_id}") from exc
    return record


def get_video(video_id: str, *, consistent: bool = False) -> VideoRecord | None:
    table = bind()
    try:
        return table.get(video_id, consistent_read=consistent)
    except table.DoesNotExist:
        return None


def find_video_id_by_task(task_id: str) -> str | None:
    table = bind()
    for keys in table.by_task_id.query(task_id, limit=1):
        return keys.video_id
    return None


class ProgressOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the record already has this status
    STALE = "stale"  # the record is further along (or terminal): the delivery is older news
    MISSING = "missing"  # the record is gone (e.g. purged) or belongs to another task


def _progress_actions(progress: TaskProgress, now: datetime) -> list[Action]:
    t = VideoRecord
    actions: list[Action] = [t.status.set(progress.status.value), t.updated_at.set(now)]
    if progress.cost_points is not None:
        actions.append(t.cost_points.set(progress.cost_points))
    if progress.cost_usd is not None:
        actions.append(t.cost_usd.set(progress.cost_usd))
    if progress.status is VideoStatus.COMPLETED:
        if not progress.provider_video_url:
            raise ValueError("a completed task needs a video URL")
        video_url = progress.provider_video_url
        raw_url = progress.provider_video_raw_url or video_url
        actions += [
            # Until saved, the UI plays the provider's files. A save can only follow completion, and
            # completion is terminal, so this never overwrites an R2 URL.
            t.video_url.set(video_url),
            t.video_raw_url.set(raw_url),
            t.provider_video_url.set(video_url),
            t.provider_video_raw_url.set(raw_url),
            t.completed_at.set(progress.completed_at or now),
            t.error.remove(),
            t.in_flight_shard.remove(),
        ]
        if progress.thumbnail_url:
            actions.append(t.thumbnail_url.set(progress.thumbnail_url))
    elif progress.status is VideoStatus.FAILED:
        actions += [
            t.error.set(progress.error or "the provider reported a failure without a reason"),
            t.in_flight_shard.remove(),
        ]
    return actions


def apply_task_progress(video_id: str, progress: TaskProgress) -> ProgressOutcome:
    """Move a record forward to the delivered status in one conditional write; never backwards."""
    table = bind()
    predecessors = progress.status.predecessors()
    if not predecessors:  # nothing comes before "pending": a pending delivery only confirms what we have
        current = get_video(video_id, consistent=True)
        return _classify(current, progress)
    condition = (table.task_id == progress.task_id) & table.status.is_in(*(s.value for s in predecessors))
    try:
        table(video_id).update(actions=_progress_actions(progress, utcnow()), condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code != CONDITION_FAILED:
            raise
        return _classify(get_video(video_id, consistent=True), progress)
    return ProgressOutcome.APPLIED


def _classify(current: VideoRecord | None, progress: TaskProgress) -> ProgressOutcome:
    if current is None or current.task_id != progress.task_id:
        return ProgressOutcome.MISSING
    if current.video_status is progress.status:
        return ProgressOutcome.DUPLICATE
    return ProgressOutcome.STALE


def _update_if(video_id: str, actions: list[Action], condition: Condition) -> bool:
    """One conditional UpdateItem; False when the condition does not hold (anything else raises)."""
    try:
        bind()(video_id).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return False
        raise
    return True


def _no_live_save_lease(now: datetime) -> Condition:
    """No save holds the record: never leased, or the lease has expired (a crashed save's)."""
    return Or(VideoRecord.save_lease_expires_at.does_not_exist(), VideoRecord.save_lease_expires_at < now)


def claim_save_lease(video_id: str, user_id: str, lease_id: str, expires_at: datetime, now: datetime) -> bool:
    """Take the right to save a video: one writer at a time. False when the record is not the caller's,
    not completed, already saved, or held by a save whose lease has not expired."""
    table = bind()
    condition = (
        (table.user_id == user_id)
        & (table.status == VideoStatus.COMPLETED.value)
        & (table.saved_to_r2 == False)  # noqa: E712 (a PynamoDB condition, not a comparison)
        & _no_live_save_lease(now)
    )
    return _update_if(
        video_id, [table.save_lease_id.set(lease_id), table.save_lease_expires_at.set(expires_at)], condition
    )


class LeaseLost(Exception):
    """The save's lease expired and was taken over (or the record vanished) before the save finished."""


def record_saved(
    video_id: str, lease_id: str, *, r2_key: str, url: str, size_bytes: int, sha256: str, saved_at: datetime
) -> VideoRecord:
    """Point the record at its R2 object and take it out of the purge index, if our lease still holds."""
    table = bind()
    record = table(video_id)
    try:
        record.update(
            actions=[
                table.saved_to_r2.set(True),
                table.r2_key.set(r2_key),
                table.size_bytes.set(size_bytes),
                table.sha256.set(sha256),
                table.saved_at.set(saved_at),
                table.video_url.set(url),
                table.video_raw_url.set(url),
                table.updated_at.set(saved_at),
                table.purge_shard.remove(),
                table.save_lease_id.remove(),
                table.save_lease_expires_at.remove(),
                table.save_error.remove(),
            ],
            condition=(table.save_lease_id == lease_id) & (table.saved_to_r2 == False),  # noqa: E712
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            raise LeaseLost(video_id) from exc
        raise
    return record


def release_save_lease(video_id: str, lease_id: str, error: str) -> bool:
    """Give the lease back after a failed save, recording why; False if the lease was no longer ours."""
    table = bind()
    actions: list[Action] = [
        table.save_error.set(error),
        table.updated_at.set(utcnow()),
        table.save_lease_id.remove(),
        table.save_lease_expires_at.remove(),
    ]
    return _update_if(video_id, actions, table.save_lease_id == lease_id)


class Throttled(Exception):
    """DynamoDB kept throttling a request after botocore's own retries: worth trying again a little later."""


def expired_unsaved(
    shard: str, cutoff: datetime, *, page_size: int, start_after: dict[str, Any] | None = None
) -> tuple[list[VideoRecord], dict[str, Any] | None]:
    """One page of a purge shard: unsaved records created strictly before ``cutoff``, oldest first.

    Returns the page (keys, ``created_at`` and ``campaign_id`` only) and where the next page starts (None
    at the end). The index is sparse, so the work is proportional to what is expired, not to the table.
    """
    table = bind()
    results = table.unsaved_by_age.query(
        shard,
        range_key_condition=table.created_at < cutoff,
        limit=page_size,
        page_size=page_size,
        last_evaluated_key=start_after,
    )
    page = list(results)
    return page, results.last_evaluated_key


def delete_if_unsaved(video_id: str, now: datetime) -> bool:
    """Delete a record only if it is still unsaved and no live save holds it; False if it was kept.

    Raises :class:`Throttled` when DynamoDB still throttles the delete after botocore's own retries; any
    other failure propagates unchanged.
    """
    table = bind()
    condition = (
        table.purge_shard.exists()
        & (table.saved_to_r2 == False)  # noqa: E712 (a PynamoDB condition, not a comparison)
        & _no_live_save_lease(now)
    )
    try:
        table(video_id).delete(condition=condition)
    except DeleteError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return False
        if exc.cause_response_code in THROTTLING_ERRORS:
            raise Throttled(f"deleting video {video_id} was throttled ({exc.cause_response_code})") from exc
        raise
    return True


def in_flight_before(cutoff: datetime, *, limit: int) -> list[VideoRecord]:
    """Up to ``limit`` records still pending or processing, created before ``cutoff``, oldest first per shard
    (keys, ``created_at`` and ``task_id`` only). Reads only what is in flight, whatever the table's size."""
    table = bind()
    found: list[VideoRecord] = []
    for shard in range(PURGE_INDEX_SHARDS):
        remaining = limit - len(found)
        if remaining <= 0:
            break
        found += table.in_flight_by_age.query(
            str(shard), range_key_condition=table.created_at < cutoff, limit=remaining, page_size=remaining
        )
    return found


def user_videos(
    user_id: str,
    *,
    campaign_id: str | None = None,
    status: VideoStatus | None = None,
    saved: bool | None = None,
    limit: int = 24,
    cursor: str | None = None,
) -> tuple[list[VideoRecord], str | None]:
    """A page of a user's videos, newest first (optionally one campaign, one status, saved or not), and the
    opaque cursor of the next page. A Query on the user's (or user-and-campaign's) index, never a Scan."""
    table = bind()
    index: GlobalSecondaryIndex[VideoRecord]
    if campaign_id is None:
        index, hash_key, hash_name = table.by_user, user_id, "user_id"
    else:
        index, hash_key, hash_name = table.by_user_campaign, user_campaign_key(user_id, campaign_id), "user_campaign"
    conditions = []
    if status is not None:
        conditions.append(table.status == status.value)
    if saved is not None:
        conditions.append(table.saved_to_r2 == saved)
    condition = None
    for part in conditions:
        condition = part if condition is None else condition & part
    start = decode_cursor(cursor, {hash_name: "S", "created_at": "S", "video_id": "S"})
    if start is not None and start[hash_name] != {"S": hash_key}:
        raise BadCursor("the cursor belongs to another listing")
    results = index.query(
        hash_key, filter_condition=condition, scan_index_forward=False, limit=limit, last_evaluated_key=start
    )
    page = list(results)
    return page, encode_cursor(results.last_evaluated_key if len(page) == limit else None)


def saved_videos(user_id: str, campaign_id: str | None = None) -> list[VideoRecord]:
    """Every saved video of a user (or of one campaign), for storage accounting."""
    table = bind()
    if campaign_id is None:
        results = table.by_user.query(user_id, filter_condition=table.saved_to_r2 == True)  # noqa: E712
    else:
        results = table.by_user_campaign.query(
            user_campaign_key(user_id, campaign_id),
            filter_condition=table.saved_to_r2 == True,  # noqa: E712
        )
    return list(results)
