"""One attempt at a save, as the worker makes it: claim the lease, copy the provider's file into R2 while the
lease is kept alive, then record the save — or say why not, and whether another attempt may help.

The record is the truth, the queue's message only a reminder: an attempt first claims the save's lease with a
conditional write (``db.claim_save``), so a duplicate or late message, or a second worker, finds nothing to do.
Everything an attempt may leave (an unfinished multipart upload, an object not yet recorded) is at the video's
deterministic key, which the record names: the next attempt overwrites it, and a save that fails for good
removes it before it says so (or, if R2 refuses, leaves the record in the background-work index for the sweep).

The object carries ``Content-Disposition: attachment`` with a name made from the prompt (``download_name``), so a
public URL downloads under a sensible name too. After the video, the thumbnail is copied beside it (``thumbnail``,
best effort). A provider that answers 403/404/410 marks the preview expired: it can never be saved.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from aws_lambda_powertools.metrics import single_metric

from video_library import db
from video_library.deadline import Deadline, TimeLimit, run_within
from video_library.download import SourceDownload, open_download
from video_library.download_name import attachment
from video_library.errors import SourceGone, VideoLibraryError
from video_library.lease import LEASE_TTL, LeaseKeeper
from video_library.media_info import MediaInfo, MediaProbe
from video_library.observability import NAMESPACE, MetricUnit, logger, metrics
from video_library.r2 import object_keys_of, r2_transfer_client, stored_object_url, video_object_key
from video_library.save_state import SaveState
from video_library.settings import get_settings
from video_library.source import SourcePolicy
from video_library.thumbnail import StoredThumbnail, copy_thumbnail
from video_library.upload import (
    TRANSFER_ID_METADATA,
    abort_unfinished_uploads,
    delete_objects,
    part_size_for,
    upload_object,
)

# Kept back from the invocation for what follows a transfer: a stuck R2 request running out its read timeout
# (20 s), the abort, the record update, the message's visibility. A transfer that needs more time than the
# invocation has is cut there and retried, never killed half-way.
FINISH_MARGIN_S = 30.0
# Starting a transfer with less than this left is not worth it: the message comes back at once instead.
MIN_START_S = FINISH_MARGIN_S + 15.0
# Each DynamoDB call of an attempt may wait at most this long (and never past the invocation's end).
DYNAMODB_WAIT_S = 8.0
T = TypeVar("T")
# Backoff between attempts (the message's visibility): 30 s, 1 min, 2 min, 4 min, ... capped.
RETRY_BASE_S = 30
RETRY_CAP_S = 900


class Outcome(StrEnum):
    SAVED = "saved"
    NOTHING_TO_DO = "nothing_to_do"  # saved already, failed, deleted, or another worker holds the lease
    RETRY = "retry"  # a transient failure: the message comes back after ``retry_after_s``
    FAILED = "failed"  # final: the record says why
    GAVE_UP = "gave_up"  # transient failures on every attempt: the record says failed; the message goes to the DLQ


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    video_id: str
    retry_after_s: int = 0
    error_code: str | None = None
    message: str | None = None

    @property
    def keeps_message(self) -> bool:
        """Whether the queue should deliver the message again (a retry, or a last failure for the DLQ)."""
        return self.outcome in (Outcome.RETRY, Outcome.GAVE_UP)


@dataclass
class CopyResult:
    size: int
    sha256: str
    content_type: str
    parts: int
    media: MediaInfo | None = None
    thumbnail: StoredThumbnail | None = None


@dataclass
class _Progress:
    """What the lease keeper reports with each renewal: the download's running count and announced size."""

    download: SourceDownload | None = None
    started: float = field(default_factory=time.monotonic)

    def __call__(self) -> tuple[int, int | None]:
        if self.download is None:
            return 0, None
        return self.download.size, self.download.declared_size


class _EarliestOf:
    """A time limit that is the earliest of several (the invocation's end, the lease's confirmed end)."""

    def __init__(self, *limits: TimeLimit) -> None:
        self._limits = limits

    def remaining(self) -> float:
        return min(limit.remaining() for limit in self._limits)


def backoff_s(attempt: int) -> int:
    """How long the next attempt waits after ``attempt`` failed: exponential, capped, with some jitter."""
    base = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempt - 1))
    return int(base * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not security)


def copy_to_r2(
    source_url: str,
    key: str,
    *,
    metadata: dict[str, str],
    limit: TimeLimit,
    progress: _Progress | None = None,
    disposition: Callable[[str], str] | None = None,
) -> CopyResult:
    """Stream the provider's file into R2 at ``key``: constant memory, every wait within ``limit``.
    ``disposition`` gives the object's ``Content-Disposition`` for the video's content type."""
    settings = get_settings()
    with open_download(
        source_url,
        policy=SourcePolicy.from_settings(settings),
        max_bytes=settings.max_video_bytes,
        deadline=limit,
    ) as download:
        if progress is not None:
            progress.download = download
        # The video's duration and picture size, read from its own header as the bytes pass (no second pass).
        probe = MediaProbe()

        def read(buffer: bytearray) -> int:
            count = download.readinto(buffer)
            probe.feed(memoryview(buffer)[:count])
            return count

        uploaded = upload_object(
            read,
            r2_transfer_client(),
            bucket=settings.r2_bucket,
            key=key,
            content_type=download.content_type,
            metadata=metadata,
            limit=limit,
            part_size=part_size_for(settings.max_video_bytes),
            content_disposition=disposition(download.content_type) if disposition is not None else None,
        )
        if probe.problem:
            logger.info("the video's header could not be read whole", extra={"key": key, "problem": probe.problem})
        return CopyResult(uploaded.size, download.sha256, download.content_type, uploaded.parts, probe.result())


def attempt_save(video_id: str, *, receive_count: int, remaining_ms: Callable[[], int]) -> AttemptResult:
    """Make one attempt at saving ``video_id`` within the invocation's remaining time."""
    invocation = Deadline.after(remaining_ms() / 1000)
    if invocation.remaining() < MIN_START_S:
        return AttemptResult(Outcome.RETRY, video_id, retry_after_s=0, message="too little time left to start")
    lease_id = uuid.uuid4().hex
    now = db.utcnow()
    record = _bounded(lambda: db.claim_save(video_id, lease_id, now + LEASE_TTL, now), invocation, "claiming the save")
    if record is None:
        return _nothing_to_do(video_id, invocation)
    settings = get_settings()
    attempts = int(record.save_attempts or 1)
    last_attempt = attempts >= settings.save_max_attempts or receive_count >= settings.save_max_attempts
    if attempts > settings.save_max_attempts:
        reason = record.save_error or "every attempt failed"
        return _fail(record, lease_id, "gave_up", f"gave up after {attempts - 1} attempts: {reason}", invocation)

    key = video_object_key(record.campaign_id, record.video_id)
    started = time.monotonic()
    progress = _Progress()
    failure: VideoLibraryError | None = None
    with LeaseKeeper(video_id, lease_id, progress=progress) as keeper:
        limit = _EarliestOf(invocation.shortened(FINISH_MARGIN_S), keeper)
        try:
            copied = _copy(record, key, lease_id, limit, progress)
        except VideoLibraryError as exc:
            failure = exc
        except Exception as exc:  # a bug or an unexpected library error: retried like a transient failure
            logger.exception("save attempt failed unexpectedly", extra={"video_id": video_id})
            failure = _Unexpected(f"the save failed on our side ({type(exc).__name__})")
    if keeper.lost:
        # Someone else holds the save now (our lease expired); whatever we wrote is at the same key, theirs to
        # overwrite. Nothing of ours to record or undo.
        return AttemptResult(Outcome.NOTHING_TO_DO, video_id, message="the lease was taken over")
    if failure is not None:
        _count_failure(failure.code)
        logger.warning(
            "save attempt failed",
            extra={"video_id": video_id, "attempt": attempts, "reason": failure.code, "detail": failure.message},
        )
        if failure.retryable and not last_attempt:
            return _retry(record, lease_id, failure, attempts, invocation)
        if failure.retryable:
            message = f"gave up after {attempts} attempts: {failure.message}"
            return _fail(record, lease_id, "gave_up", message, invocation, outcome=Outcome.GAVE_UP)
        # The provider answered that the file is gone (not merely that it gave no URL): the preview has expired.
        gone = isinstance(failure, SourceGone) and "status" in failure.details
        return _fail(record, lease_id, failure.code, failure.message, invocation, preview_gone=gone)
    return _record(record, lease_id, key, copied, started, attempts, invocation)


class _Unexpected(VideoLibraryError):
    code = "internal_error"
    retryable = True


def _copy(record: db.VideoRecord, key: str, lease_id: str, limit: TimeLimit, progress: _Progress) -> CopyResult:
    # The unwatermarked file is the one worth keeping; watermarked only where the model gives nothing else.
    source_url = record.provider_video_raw_url or record.provider_video_url
    if not source_url:
        raise SourceGone("the provider gave no URL for this video")
    settings = get_settings()
    # A killed earlier attempt may have left an unfinished multipart upload at this key; we hold the lease, so
    # none is live. Best effort: the sweep and the bucket's lifecycle rule catch what this misses.
    try:
        abort_unfinished_uploads(r2_transfer_client(), settings.r2_bucket, key)
    except Exception:
        logger.warning("could not look for unfinished uploads", extra={"key": key}, exc_info=True)
    metadata = {"video-id": record.video_id, TRANSFER_ID_METADATA: lease_id}
    copied = copy_to_r2(
        source_url,
        key,
        metadata=metadata,
        limit=limit,
        progress=progress,
        disposition=lambda content_type: attachment(record.prompt, record.video_id, content_type),
    )
    copied.thumbnail = copy_thumbnail(
        record.thumbnail_url,
        campaign_id=record.campaign_id,
        video_id=record.video_id,
        transfer_id=lease_id,
        limit=limit,
    )
    return copied


def _bounded(call: Callable[[], T], invocation: Deadline, what: str) -> T:
    return run_within(call, min(DYNAMODB_WAIT_S, invocation.remaining() - 1.0), what)


def _nothing_to_do(video_id: str, invocation: Deadline) -> AttemptResult:
    """The claim was refused: say why (a duplicate message, a save already done, a video gone...)."""
    try:
        current = _bounded(lambda: db.get_video(video_id, consistent=True), invocation, "reading the video")
    except Exception:
        current = None
    if current is None or current.deleting_at is not None:
        why = "the video is gone"
    elif current.save_status is SaveState.SAVED:
        why = "already saved"
    elif current.save_status.in_progress and current.lease_is_live(db.utcnow()):
        why = "another attempt is running"
    else:
        why = f"no save is waiting (state {current.save_status.value})"
    logger.info("save message needs no work", extra={"video_id": video_id, "why": why})
    return AttemptResult(Outcome.NOTHING_TO_DO, video_id, message=why)


def _retry(
    record: db.VideoRecord, lease_id: str, failure: VideoLibraryError, attempts: int, invocation: Deadline
) -> AttemptResult:
    delay = backoff_s(attempts)
    now = db.utcnow()
    try:
        _bounded(
            lambda: db.retry_save_later(record.video_id, lease_id, failure.code, failure.message, now),
            invocation,
            "queueing the save again",
        )
    except Exception:
        # The lease expires by itself and the message comes back all the same: the retry still happens.
        logger.warning("could not record the retry", extra={"video_id": record.video_id}, exc_info=True)
        delay = max(delay, int(LEASE_TTL.total_seconds()))
    return AttemptResult(Outcome.RETRY, record.video_id, delay, failure.code, failure.message)


def _fail(
    record: db.VideoRecord,
    lease_id: str,
    code: str,
    message: str,
    invocation: Deadline,
    *,
    outcome: Outcome = Outcome.FAILED,
    preview_gone: bool = False,
) -> AttemptResult:
    """Stop for good: remove whatever an attempt may have left at its keys, then say failed (and why)."""
    settings = get_settings()
    key = video_object_key(record.campaign_id, record.video_id)
    client = r2_transfer_client()
    try:
        abort_unfinished_uploads(client, settings.r2_bucket, key)
        delete_objects(client, settings.r2_bucket, object_keys_of(record.campaign_id, record.video_id), invocation)
        cleaned = True
    except Exception:
        logger.warning("could not clean up after a failed save; the sweep will", extra={"key": key}, exc_info=True)
        cleaned = False
    now = db.utcnow()
    try:
        _bounded(
            lambda: db.fail_save(
                record.video_id, lease_id, code, message, now, cleaned_up=cleaned, preview_gone=preview_gone
            ),
            invocation,
            "recording the failure",
        )
    except Exception:
        # The lease expires; the sweep finds the save stalled and fails it (or sends it again).
        logger.exception("could not record a failed save", extra={"video_id": record.video_id})
    return AttemptResult(outcome, record.video_id, error_code=code, message=message)


def _record(
    record: db.VideoRecord,
    lease_id: str,
    key: str,
    copied: CopyResult,
    started: float,
    attempts: int,
    invocation: Deadline,
) -> AttemptResult:
    settings = get_settings()
    saved_at = db.utcnow()
    try:
        _bounded(
            lambda: db.record_saved(
                record,
                lease_id,
                r2_key=key,
                url=stored_object_url(key, settings),
                size_bytes=copied.size,
                sha256=copied.sha256,
                saved_at=saved_at,
                content_type=copied.content_type,
                media=copied.media,
                thumbnail_key=copied.thumbnail.key if copied.thumbnail else None,
                thumbnail_bytes=copied.thumbnail.size if copied.thumbnail else 0,
            ),
            invocation,
            "recording the save",
        )
    except db.LeaseLost:
        # Either our own update landed and only its answer was lost (the retry then found the lease gone), or
        # our lease expired and another attempt took over the same key.
        current = db.get_video(record.video_id, consistent=True)
        if current is not None and current.saved_to_r2 and current.sha256 == copied.sha256:
            return _saved(record.video_id, key, copied, started, attempts)
        return AttemptResult(Outcome.NOTHING_TO_DO, record.video_id, message="the lease was taken over")
    except Exception as exc:
        # The update may still land (it is conditional on our lease, so it can only be right). If it does not,
        # the object stays at the record's key and the next attempt — after our lease has expired — copies again.
        logger.warning("the save could not be recorded; it will be retried", extra={"video_id": record.video_id})
        code = exc.code if isinstance(exc, VideoLibraryError) else "record_update_failed"
        return AttemptResult(
            Outcome.RETRY, record.video_id, int(LEASE_TTL.total_seconds()), code, "the save could not be recorded"
        )
    return _saved(record.video_id, key, copied, started, attempts)


def _saved(video_id: str, key: str, copied: CopyResult, started: float, attempts: int) -> AttemptResult:
    elapsed = time.monotonic() - started
    metrics.add_metric(name="VideosSaved", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BytesSaved", unit=MetricUnit.Bytes, value=copied.size)
    logger.info(
        "video saved",
        extra={
            "video_id": video_id,
            "r2_key": key,
            "size_bytes": copied.size,
            "parts": copied.parts,
            "attempt": attempts,
            "duration_s": round(elapsed, 3),
            "throughput_mib_s": round(copied.size / 1_048_576 / elapsed, 2) if elapsed > 0 else None,
        },
    )
    return AttemptResult(Outcome.SAVED, video_id)


def _count_failure(reason: str) -> None:
    with single_metric(name="SaveFailures", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="reason", value=reason)
