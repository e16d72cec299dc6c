"""Data access for video records: the PynamoDB model, its indexes, and every state change.

Every read is a GetItem or a Query on an index (never a Scan) and every state change is one conditional
write, so concurrent Lambdas cannot lose an update or move a status backwards. SDK errors become results
or domain errors here; nothing above this module sees PynamoDB's exceptions.

The model's table name and endpoint come from the settings when the first operation runs, not at import.
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.connection import Connection
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition, Or
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from video_library import quota, usage
from video_library.cursor import BadCursor as BadCursor
from video_library.dynamodb import CONDITION_FAILED, THROTTLING_ERRORS, point_at
from video_library.errors import VideoLibraryError
from video_library.media_info import MediaInfo
from video_library.models import NewVideo, TaskProgress
from video_library.save_state import SaveState
from video_library.settings import Settings, get_settings
from video_library.status import VideoStatus

# A transaction cancelled because another one (or a plain write) held one of its items at that moment, or throttled:
# worth sending again. (Cancellation reasons, per item, in a TransactionCanceledException.)
TRANSACTION_RETRY_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
TRANSACTION_RETRY_ERRORS = THROTTLING_ERRORS | {"TransactionConflictException", "TransactionInProgressException"}
TRANSACTION_ATTEMPTS = 5

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


class SavedBySizeIndex(GlobalSecondaryIndex["VideoRecord"]):
    """Sparse: only saved records carry ``saved_size_bytes``, so "largest first" reads saved videos only, in size
    order. (One index on purpose: DynamoDB, and so CloudFormation, adds at most one index to a table per update.)"""

    class Meta:
        index_name = "saved_by_size"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    saved_size_bytes = NumberAttribute(range_key=True)


class PendingWorkIndex(GlobalSecondaryIndex["VideoRecord"]):
    """Sparse: only records with background work not yet finished carry ``pending_shard`` — a save queued or
    running, a failed save whose leftovers are not yet removed, a deletion not yet finished. The sweep reads
    only those, so work that lost its driver (a lost message, a killed worker, an R2 delete that failed) is
    found again whatever the table's size. Keys only: every decision re-reads the item consistently, and
    progress updates (which rewrite the item every few seconds) cost no index writes."""

    class Meta:
        index_name = "pending_work"
        projection = KeysOnlyProjection()

    pending_shard = UnicodeAttribute(hash_key=True)
    pending_since = UTCDateTimeAttribute(range_key=True)


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
    # The prompt in lower case (casefolded): what search by prompt compares, as a DynamoDB filter.
    prompt_search = UnicodeAttribute(null=True)
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
    content_type = UnicodeAttribute(null=True)  # the saved video's
    # Key of the largest-first index; present only once saved (the saved file's size).
    saved_size_bytes = NumberAttribute(null=True)
    # The provider's thumbnail copied beside the video when it was saved (absent: none, or it could not be copied).
    thumbnail_key = UnicodeAttribute(null=True)
    thumbnail_bytes = NumberAttribute(null=True)
    # What the usage counters count for this record while it is saved (video and thumbnail): a deletion takes
    # exactly this back.
    stored_bytes = NumberAttribute(null=True)
    # The provider's file was found gone (403/404/410) by a save or a check: the preview can never be saved.
    preview_expired_at = UTCDateTimeAttribute(null=True)
    # When a check last found the provider's file still there.
    preview_checked_at = UTCDateTimeAttribute(null=True)
    # Read from the saved file's own header (video_library.media_info); absent when it could not be read.
    duration_s = NumberAttribute(null=True)
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    # A save in progress holds a lease: one transfer per video, and the purge keeps a record being saved.
    save_lease_id = UnicodeAttribute(null=True)
    save_lease_expires_at = UTCDateTimeAttribute(null=True)
    # Background save (video_library.save_state): state, progress, and why the last attempt failed.
    save_state = UnicodeAttribute(null=True)  # SaveState; absent on records that never asked for a save
    save_error_code = UnicodeAttribute(null=True)
    save_error = UnicodeAttribute(null=True)  # the message; cleared by a successful save
    save_attempts = NumberAttribute(null=True)  # transfers started since the save was asked for
    save_requested_at = UTCDateTimeAttribute(null=True)
    save_started_at = UTCDateTimeAttribute(null=True)
    save_progress_at = UTCDateTimeAttribute(null=True)
    bytes_copied = NumberAttribute(null=True)
    # Set when the record is being deleted (purge or user): its objects go first, then the record.
    deleting_at = UTCDateTimeAttribute(null=True)

    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)

    # Key of the purge index; present only while the video is not saved.
    purge_shard = UnicodeAttribute(null=True)
    # Key of the reconciliation index; present only while the video is pending or processing.
    in_flight_shard = UnicodeAttribute(null=True)
    # Key of the background-work index; present only while a save or a deletion is unfinished.
    pending_shard = UnicodeAttribute(null=True)
    pending_since = UTCDateTimeAttribute(null=True)

    by_task_id = ByTaskIndex()
    by_user = ByUserIndex()
    by_user_campaign = ByUserCampaignIndex()
    unsaved_by_age = UnsavedByAgeIndex()
    in_flight_by_age = InFlightByAgeIndex()
    pending_work = PendingWorkIndex()
    saved_by_size = SavedBySizeIndex()

    @property
    def video_status(self) -> VideoStatus:
        return VideoStatus(self.status)

    @property
    def save_status(self) -> SaveState:
        return SaveState.of(self.save_state, saved=bool(self.saved_to_r2))

    def lease_is_live(self, now: datetime) -> bool:
        return self.save_lease_expires_at is not None and self.save_lease_expires_at >= now

    def save_stalled(self, now: datetime, after: timedelta) -> bool:
        """A save queued or running with no live lease and no sign of life (request, progress) for ``after``."""
        if not self.save_status.in_progress or self.lease_is_live(now):
            return False
        last_sign = max(filter(None, (self.save_requested_at, self.save_progress_at)), default=None)
        return last_sign is None or last_sign < now - after


_bound_to: tuple[str, str, str, str | None] | None = None
_transactions: Connection | None = None


def bind(settings: Settings | None = None) -> type[VideoRecord]:
    """Point the models (records and usage counters) at the configured tables and endpoint (again, if the
    settings object changed)."""
    global _bound_to, _transactions
    settings = settings or get_settings()
    # What the connections are made of: settings read again with the same tables and endpoint keep them (a new
    # botocore client costs ~0.1 s of CPU, and tests read the settings again all the time).
    where = (settings.videos_table, settings.usage_table, settings.aws_region, settings.dynamodb_endpoint_url)
    if _bound_to != where:
        point_at(VideoRecord, settings.videos_table, settings)
        usage.bind(settings)
        _transactions = None
        _bound_to = where
    return VideoRecord


def _transaction_connection() -> Connection:
    """The connection transactions are sent on (the tables' own connections are per table)."""
    global _transactions
    bind()
    if _transactions is None:
        meta = VideoRecord.Meta
        _transactions = Connection(
            region=meta.region,
            host=meta.host,
            connect_timeout_seconds=meta.connect_timeout_seconds,
            read_timeout_seconds=meta.read_timeout_seconds,
            max_retry_attempts=meta.max_retry_attempts,
            max_pool_connections=meta.max_pool_connections,
        )
    return _transactions


def create_tables(settings: Settings | None = None, *, wait: bool = True) -> None:
    """Create the video table and the usage table, with their indexes, and the quotas table, where they do not
    exist (idempotent)."""
    bind(settings)
    for table in (VideoRecord, usage.UsageRecord):
        if not table.exists():
            table.create_table(wait=wait, billing_mode=PAY_PER_REQUEST_BILLING_MODE)
    quota.create_table(settings, wait=wait)


class Throttled(VideoLibraryError):
    """DynamoDB kept throttling a request (or cancelling a transaction for a conflict) after the retries: worth
    trying again a little later."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "database_busy"
    retryable = True


def _with_usage(
    write_record: Callable[[TransactWrite], None],
    user_id: str,
    campaign_id: str,
    change: usage.UsageChange,
    what: str,
) -> bool:
    """One transaction: the record's conditional write (``write_record``) and the increments it makes to its user's
    and campaign's counters. True when it landed, False when the record's condition did not hold (nothing
    changed). A transaction cancelled by a conflict (another one on the same counter) or by throttling is sent
    again with jittered backoff; :class:`Throttled` if that keeps happening."""
    jitter = random.Random()  # noqa: S311 (jitter, not security)
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            # A token per attempt: botocore's own retries of this request reuse it, so an attempt whose answer
            # was lost is not applied twice.
            with TransactWrite(connection=_transaction_connection(), client_request_token=uuid.uuid4().hex) as tx:
                write_record(tx)
                for counter, counter_campaign in usage.counters_of(user_id, campaign_id):
                    tx.update(counter, actions=change.actions(campaign_id=counter_campaign))
        except TransactWriteError as exc:
            reasons = {reason.code for reason in exc.cancellation_reasons if reason is not None}
            if "ConditionalCheckFailed" in reasons:
                return False
            if not (reasons & TRANSACTION_RETRY_REASONS or exc.cause_response_code in TRANSACTION_RETRY_ERRORS):
                raise
            if attempt == TRANSACTION_ATTEMPTS:
                raise Throttled(f"{what} kept being cancelled ({sorted(reasons) or exc.cause_response_code})") from exc
            time.sleep(jitter.uniform(0, min(1.0, 0.05 * 2**attempt)))
        else:
            return True
    raise AssertionError("unreachable")  # the loop returns or raises


def new_video_id() -> str:
    return uuid.uuid4().hex


def searchable(text: str) -> str:
    """How prompts are stored for search and how a search is compared with them: case folded."""
    return text.casefold()


def create_video(new: NewVideo) -> VideoRecord:
    """Store a new record under a fresh id (its campaign registered with its user first); it enters the purge index
    until it is saved."""
    table = bind()
    now = utcnow()
    video_id = new_video_id()
    created_at = new.created_at or now
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
        prompt_search=searchable(new.prompt),
        status=new.status.value,
        saved_to_r2=False,
        created_at=created_at,
        updated_at=now,
        purge_shard=purge_shard_of(video_id),
        in_flight_shard=None if new.status.is_terminal else purge_shard_of(video_id),
    )
    usage.register_campaign(new.user_id, new.campaign_id, created_at)
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


def _save_state_in(*states: SaveState) -> Condition:
    """The record's save state is one of ``states`` (an absent state counts as ``none``)."""
    named = [state.value for state in states]
    condition: Condition = VideoRecord.save_state.is_in(*named)
    if SaveState.NONE in states:
        condition = Or(VideoRecord.save_state.does_not_exist(), condition)
    return condition


def _not_being_deleted() -> Condition:
    return VideoRecord.deleting_at.does_not_exist()


def _leave_pending_work() -> list[Action]:
    return [VideoRecord.pending_shard.remove(), VideoRecord.pending_since.remove()]


def _enter_pending_work(video_id: str, now: datetime) -> list[Action]:
    return [VideoRecord.pending_shard.set(purge_shard_of(video_id)), VideoRecord.pending_since.set(now)]


def _lease_is(lease_id: str) -> Condition:
    return VideoRecord.save_lease_id == lease_id


def _drop_lease() -> list[Action]:
    return [VideoRecord.save_lease_id.remove(), VideoRecord.save_lease_expires_at.remove()]


def _save_ended(state: SaveState, code: str, message: str, now: datetime) -> list[Action]:
    """The record's save in ``state`` (failed, or queued again for a retry), with the reason."""
    return [
        VideoRecord.save_state.set(state.value),
        VideoRecord.save_error_code.set(code),
        VideoRecord.save_error.set(message),
        VideoRecord.updated_at.set(now),
    ]


def queue_save(video_id: str, user_id: str, now: datetime) -> bool:
    """Ask for a save: ``none`` or ``failed`` → ``queued``, in one conditional write. False when the record is not
    the caller's, not completed, already saved, being deleted, or already queued or saving (re-read to see which).

    The record enters the background-work index: if the message that should start the transfer is lost, the
    sweep finds the record there and sends it again."""
    table = bind()
    condition = (
        (table.user_id == user_id)
        & (table.status == VideoStatus.COMPLETED.value)
        & (table.saved_to_r2 == False)  # noqa: E712 (a PynamoDB condition, not a comparison)
        & _not_being_deleted()
        & table.preview_expired_at.does_not_exist()
        & _save_state_in(SaveState.NONE, SaveState.FAILED)
    )
    actions: list[Action] = [
        table.save_state.set(SaveState.QUEUED.value),
        table.save_requested_at.set(now),
        table.save_attempts.set(0),
        table.save_error.remove(),
        table.save_error_code.remove(),
        table.bytes_copied.remove(),
        table.save_started_at.remove(),
        table.save_progress_at.remove(),
        table.updated_at.set(now),
        *_enter_pending_work(video_id, now),
    ]
    return _update_if(video_id, actions, condition)


def unqueue_save(video_id: str, requested_at: datetime, code: str, message: str, now: datetime) -> bool:
    """The transfer could not be queued after all: ``queued`` → ``failed`` with why, if nothing has started it.

    The record stays in the background-work index; the sweep takes it out once it has checked that nothing
    was left at the object's key."""
    table = bind()
    condition = (
        (table.save_state == SaveState.QUEUED.value)
        & (table.save_requested_at == requested_at)
        & table.save_lease_id.does_not_exist()
    )
    return _update_if(video_id, _save_ended(SaveState.FAILED, code, message, now), condition)


def requeue_stalled_save(video_id: str, stalled_before: datetime, now: datetime) -> bool:
    """A save queued or running that has shown no sign of life since ``stalled_before`` and holds no live
    lease (its message was lost, or its worker was killed) is queued again; False if it moved meanwhile."""
    table = bind()
    condition = (
        _save_state_in(SaveState.QUEUED, SaveState.SAVING)
        & _no_live_save_lease(now)
        & _not_being_deleted()
        & (table.save_requested_at < stalled_before)
        & Or(table.save_progress_at.does_not_exist(), table.save_progress_at < stalled_before)
    )
    actions: list[Action] = [
        table.save_state.set(SaveState.QUEUED.value),
        table.save_requested_at.set(now),
        table.updated_at.set(now),
        *_drop_lease(),
    ]
    return _update_if(video_id, actions, condition)


def claim_save(video_id: str, lease_id: str, expires_at: datetime, now: datetime) -> VideoRecord | None:
    """Take the right to transfer a queued save: one transfer per video at a time. Returns the record as it is
    now (``save_attempts`` counts this attempt), or None when there is nothing to do or someone else holds a
    live lease (saved, failed, deleted, being deleted, not queued)."""
    table = bind()
    condition = (
        _save_state_in(SaveState.QUEUED, SaveState.SAVING)
        & (table.status == VideoStatus.COMPLETED.value)
        & (table.saved_to_r2 == False)  # noqa: E712
        & _not_being_deleted()
        & _no_live_save_lease(now)
    )
    actions: list[Action] = [
        table.save_state.set(SaveState.SAVING.value),
        table.save_lease_id.set(lease_id),
        table.save_lease_expires_at.set(expires_at),
        table.save_started_at.set(now),
        table.save_progress_at.set(now),
        table.bytes_copied.set(0),
        table.save_attempts.add(1),
        table.updated_at.set(now),
    ]
    record = table(video_id)
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return None
        raise
    return record


def renew_save_lease(
    video_id: str, lease_id: str, expires_at: datetime, now: datetime, *, bytes_copied: int, size_bytes: int | None
) -> bool:
    """Extend a running save's lease and report its progress in one write; False if the lease is not ours."""
    table = bind()
    actions: list[Action] = [
        table.save_lease_expires_at.set(expires_at),
        table.bytes_copied.set(bytes_copied),
        table.save_progress_at.set(now),
    ]
    if size_bytes is not None:
        actions.append(table.size_bytes.set(size_bytes))
    return _update_if(video_id, actions, _lease_is(lease_id))


class LeaseLost(Exception):
    """The save's lease expired and was taken over (or the record vanished) before the save finished."""


def record_saved(
    record: VideoRecord,
    lease_id: str,
    *,
    r2_key: str,
    url: str,
    size_bytes: int,
    sha256: str,
    saved_at: datetime,
    content_type: str | None = None,
    media: MediaInfo | None = None,
    thumbnail_key: str | None = None,
    thumbnail_bytes: int = 0,
) -> None:
    """Point the record at its R2 object (and thumbnail), take it out of the purge and background-work indexes and
    count it in its user's and campaign's usage — one transaction, if our lease still holds."""
    table = bind()
    facts: list[Action] = []
    if media is not None and media.duration_s is not None:
        facts.append(table.duration_s.set(round(media.duration_s, 3)))
    if media is not None and media.width is not None and media.height is not None:
        facts += [table.width.set(media.width), table.height.set(media.height)]
    if content_type is not None:
        facts.append(table.content_type.set(content_type))
    if thumbnail_key is not None:
        facts += [table.thumbnail_key.set(thumbnail_key), table.thumbnail_bytes.set(thumbnail_bytes)]
    stored = size_bytes + (thumbnail_bytes if thumbnail_key is not None else 0)
    actions = [
        *facts,
        table.saved_to_r2.set(True),
        table.save_state.set(SaveState.SAVED.value),
        table.r2_key.set(r2_key),
        table.size_bytes.set(size_bytes),
        table.saved_size_bytes.set(size_bytes),
        table.stored_bytes.set(stored),
        table.bytes_copied.set(size_bytes),
        table.sha256.set(sha256),
        table.saved_at.set(saved_at),
        table.save_progress_at.set(saved_at),
        table.video_url.set(url),
        table.video_raw_url.set(url),
        table.updated_at.set(saved_at),
        table.purge_shard.remove(),
        table.save_error.remove(),
        table.save_error_code.remove(),
        *_drop_lease(),
        *_leave_pending_work(),
    ]
    condition = (
        _lease_is(lease_id)
        & (table.saved_to_r2 == False)  # noqa: E712
        # The counters moved are the ones of the user and campaign the record has.
        & (table.user_id == record.user_id)
        & (table.campaign_id == record.campaign_id)
    )
    saved = _with_usage(
        lambda tx: tx.update(table(record.video_id), actions=actions, condition=condition),
        record.user_id,
        record.campaign_id,
        usage.UsageChange(saved_videos=1, saved_bytes=stored),
        f"recording the save of video {record.video_id}",
    )
    if not saved:
        raise LeaseLost(record.video_id)


def retry_save_later(video_id: str, lease_id: str, code: str, message: str, now: datetime) -> bool:
    """A transient failure: give the lease back and wait (``queued``) for the next attempt, saying what went
    wrong; False if the lease was no longer ours."""
    table = bind()
    actions = [*_save_ended(SaveState.QUEUED, code, message, now), table.save_requested_at.set(now), *_drop_lease()]
    return _update_if(video_id, actions, _lease_is(lease_id))


def fail_save(
    video_id: str,
    lease_id: str,
    code: str,
    message: str,
    now: datetime,
    *,
    cleaned_up: bool,
    preview_gone: bool = False,
) -> bool:
    """The save stopped for good: ``failed`` with why, the lease given back. ``cleaned_up``: nothing is left at the
    object's key (checked), so the record leaves the background-work index; otherwise the sweep cleans up.
    ``preview_gone``: the provider no longer has the file, so the preview is marked expired (it cannot be saved)."""
    table = bind()
    actions = [*_save_ended(SaveState.FAILED, code, message, now), *_drop_lease()]
    if cleaned_up:
        actions += _leave_pending_work()
    if preview_gone:
        actions.append(table.preview_expired_at.set(table.preview_expired_at | now))
    return _update_if(video_id, actions, _lease_is(lease_id))


def mark_preview_expired(video_id: str, now: datetime) -> bool:
    """The provider's file was found gone: the preview is expired for good (never saved, not being deleted).
    False when it was saved, is being deleted, was already marked, or is gone."""
    table = bind()
    condition = (
        table.video_id.exists()
        & (table.saved_to_r2 == False)  # noqa: E712
        & _not_being_deleted()
        & table.preview_expired_at.does_not_exist()
    )
    actions: list[Action] = [
        table.preview_expired_at.set(now),
        table.preview_checked_at.set(now),
        table.updated_at.set(now),
    ]
    return _update_if(video_id, actions, condition)


def record_preview_available(video_id: str, now: datetime) -> bool:
    """A check found the provider's file still there: remember when (checks are not repeated right away)."""
    table = bind()
    condition = (
        table.video_id.exists()
        & (table.saved_to_r2 == False)  # noqa: E712
        & _not_being_deleted()
        & table.preview_expired_at.does_not_exist()
    )
    return _update_if(video_id, [table.preview_checked_at.set(now)], condition)


def fail_stalled_save(video_id: str, code: str, message: str, now: datetime) -> bool:
    """A save queued or running with no live lease that will not be tried again: ``failed`` with why."""
    bind()
    condition = _save_state_in(SaveState.QUEUED, SaveState.SAVING) & _no_live_save_lease(now) & _not_being_deleted()
    return _update_if(video_id, [*_save_ended(SaveState.FAILED, code, message, now), *_drop_lease()], condition)


def claim_cleanup(video_id: str, lease_id: str, expires_at: datetime, now: datetime) -> VideoRecord | None:
    """Take a failed save's lease to remove what it may have left at its key (no save can start meanwhile)."""
    table = bind()
    condition = (
        (table.save_state == SaveState.FAILED.value)
        & (table.saved_to_r2 == False)  # noqa: E712
        & table.pending_shard.exists()
        & _not_being_deleted()
        & _no_live_save_lease(now)
    )
    record = table(video_id)
    try:
        record.update(
            actions=[table.save_lease_id.set(lease_id), table.save_lease_expires_at.set(expires_at)],
            condition=condition,
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return None
        raise
    return record


def cleanup_done(video_id: str, lease_id: str) -> bool:
    """What a failed save left is gone: the record leaves the background-work index and the lease is given back."""
    return _update_if(video_id, [*_drop_lease(), *_leave_pending_work()], _lease_is(lease_id))


def release_lease(video_id: str, lease_id: str) -> bool:
    """Give a lease back without changing anything else (e.g. a cleanup that could not finish)."""
    return _update_if(video_id, _drop_lease(), _lease_is(lease_id))


def _throttled(exc: DeleteError | UpdateError, what: str) -> Throttled | None:
    if exc.cause_response_code in THROTTLING_ERRORS:
        return Throttled(f"{what} was throttled ({exc.cause_response_code})")
    return None


def _delete_if(video_id: str, condition: Condition) -> bool:
    """One conditional DeleteItem; False when the condition does not hold, :class:`Throttled` when DynamoDB
    still throttles it after botocore's retries (anything else raises)."""
    try:
        bind()(video_id).delete(condition=condition)
    except DeleteError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return False
        if (throttled := _throttled(exc, f"deleting video {video_id}")) is not None:
            raise throttled from exc
        raise
    return True


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


def delete_if_never_saved(video_id: str, now: datetime, condition: Condition | None = None) -> bool:
    """Delete, in one conditional write, a record that cannot have anything in R2: never saved, no save ever
    started (so no object, no thumbnail, no multipart upload), none queued or running, no live lease, not being
    deleted — and ``condition``. Never saved, it counts in no usage counter. False if it was kept (the caller
    re-reads to decide what else to do).

    Raises :class:`Throttled` when DynamoDB still throttles the delete after botocore's own retries."""
    table = bind()
    never_started = Or(table.save_attempts.does_not_exist(), table.save_attempts == 0)
    full = (
        (table.saved_to_r2 == False)  # noqa: E712 (a PynamoDB condition, not a comparison)
        & never_started
        & _save_state_in(SaveState.NONE, SaveState.FAILED)
        & _not_being_deleted()
        & _no_live_save_lease(now)
    )
    if condition is not None:
        full = full & condition
    return _delete_if(video_id, full)


def _owned_as(record: VideoRecord) -> Condition:
    """The record still belongs where ``record`` says (the counters a transaction moves are that user's and
    campaign's; neither ever changes, the condition only makes it certain)."""
    owned: Condition = (VideoRecord.user_id == record.user_id) & (VideoRecord.campaign_id == record.campaign_id)
    return owned


def begin_deletion(
    video_id: str, lease_id: str, expires_at: datetime, now: datetime, condition: Condition | None = None
) -> VideoRecord | None:
    """Mark a record as being deleted, under a lease, before its R2 objects go (then :func:`finish_deletion`).

    Allowed when no save is queued or running and no live lease holds the record (and ``condition``), or when an
    earlier deletion stopped half-way (its lease expired): that one is taken over. From here on no save can start,
    the API treats the record as gone, and the record is in the background-work index, so a deletion whose R2
    calls fail is finished later and the objects are never lost track of. None when the record may not be
    deleted now (re-read to see why), or is gone."""
    table = bind()
    fresh = _not_being_deleted() & _save_state_in(SaveState.NONE, SaveState.FAILED, SaveState.SAVED)
    if condition is not None:
        fresh = fresh & condition
    allowed = table.video_id.exists() & _no_live_save_lease(now) & Or(fresh, table.deleting_at.exists())
    record = table(video_id)
    try:
        record.update(
            actions=[
                table.deleting_at.set(table.deleting_at | now),
                table.save_lease_id.set(lease_id),
                table.save_lease_expires_at.set(expires_at),
                table.updated_at.set(now),
                *_enter_pending_work(video_id, now),
            ],
            condition=allowed,
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return None
        if (throttled := _throttled(exc, f"deleting video {video_id}")) is not None:
            raise throttled from exc
        raise
    return record


def finish_deletion(record: VideoRecord, lease_id: str) -> bool:
    """Delete a record whose objects are gone, if our deletion lease still holds it. ``record`` is the record as
    :func:`begin_deletion` marked it; a saved one takes off its user's and campaign's counters exactly what they
    counted for it, in the same transaction."""
    table = bind()
    condition = table.deleting_at.exists() & _lease_is(lease_id)
    if not record.saved_to_r2:
        condition = condition & (table.saved_to_r2 == False)  # noqa: E712
        return _delete_if(record.video_id, condition)
    stored = int(record.stored_bytes or 0)
    # Saved before the counters existed (no stored_bytes): never counted, so nothing to take off.
    counted = record.stored_bytes is not None
    condition = condition & _owned_as(record) & (table.saved_to_r2 == True)  # noqa: E712
    condition = condition & ((table.stored_bytes == stored) if counted else table.stored_bytes.does_not_exist())
    change = usage.UsageChange(saved_videos=-1, saved_bytes=-stored) if counted else usage.UsageChange()
    return _with_usage(
        lambda tx: tx.delete(table(record.video_id), condition=condition),
        record.user_id,
        record.campaign_id,
        change,
        f"deleting video {record.video_id}",
    )


def clear_pending_if_saved(video_id: str) -> bool:
    """Take a saved record out of the background-work index (nothing is pending for it any more)."""
    return _update_if(video_id, _leave_pending_work(), VideoRecord.saved_to_r2 == True)  # noqa: E712


def pending_work(shard: str, *, before: datetime, limit: int) -> list[VideoRecord]:
    """Keys of up to ``limit`` records of one shard of the background-work index that entered it before
    ``before``, oldest first."""
    table = bind()
    return list(
        table.pending_work.query(shard, range_key_condition=table.pending_since < before, limit=limit, page_size=limit)
    )


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


def ready_to_save(user_id: str, campaign_id: str, *, limit: int) -> tuple[list[VideoRecord], bool]:
    """Up to ``limit`` of a campaign's completed videos that are not saved and have no save queued or running,
    newest first (a Query on the campaign's index), and whether more may remain."""
    table = bind()
    condition = (
        (table.status == VideoStatus.COMPLETED.value)
        & (table.saved_to_r2 == False)  # noqa: E712
        & table.deleting_at.does_not_exist()
        & table.preview_expired_at.does_not_exist()
        & _save_state_in(SaveState.NONE, SaveState.FAILED)
    )
    results = table.by_user_campaign.query(
        user_campaign_key(user_id, campaign_id),
        filter_condition=condition,
        scan_index_forward=False,
        limit=limit + 1,
    )
    found = list(results)
    return found[:limit], len(found) > limit
