"""Save to Library: copy a completed video from the provider into R2, once, safely, in constant memory.

1. Only the owner's completed videos (someone else's is 404, as if absent); an already saved video answers
   its saved state without any transfer.
2. A lease (a conditional write with an expiry) makes one transfer per video: concurrent saves get 409,
   and a lease left by a crashed run expires and can be taken over.
3. The provider's file streams through ``source`` (every safety check) into ``upload`` (equal parts,
   bounded memory) at a deterministic key, so a retry overwrites and never duplicates.
4. A conditional write, still under our lease, points the record at R2 and takes it out of the purge index.
   If that write fails the object is removed again, so no record ever points at a missing object and no
   object outlives a failed save (a crash in between leaves an object the retry overwrites, or the purge
   deletes with its record).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from aws_lambda_powertools.metrics import single_metric
from pydantic import BaseModel, BeforeValidator, Field, StrictStr

from video_library import db
from video_library.errors import (
    SaveInProgress,
    SourceUnavailable,
    VideoLibraryError,
    VideoNotFound,
    WrongState,
)
from video_library.models import CAMPAIGN_ID_PATTERN
from video_library.observability import NAMESPACE, MetricUnit, logger, metrics
from video_library.r2 import playable_url, r2_client, stored_object_url, video_object_key
from video_library.settings import get_settings
from video_library.source import SourcePolicy, open_source
from video_library.status import VideoStatus
from video_library.upload import STREAMING_PUT_MAX, part_size_for, stream_put, upload_stream

# Time kept back from the Lambda's budget for what follows the transfer (the record update, or the abort).
FINISH_MARGIN_S = 10.0
# A lease outlives the invocation that took it by this much, so it never expires under a live transfer.
LEASE_MARGIN_S = 60.0


def _campaign_id_as_text(value: object) -> object:
    # Front ends send campaign ids as numbers or strings; booleans and floats are mistakes, not ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is not None and not isinstance(value, str):
        raise ValueError("campaign_id must be a string or an integer")
    return value


class SaveRequest(BaseModel):
    """Body of ``POST /api/video/save-to-library``."""

    video_id: StrictStr = Field(min_length=1, max_length=128)
    campaign_id: Annotated[str | None, BeforeValidator(_campaign_id_as_text)] = Field(
        default=None,
        pattern=CAMPAIGN_ID_PATTERN,
        description="When given, must be the video's campaign. A number is accepted and read as its digits.",
    )


class SavedVideo(BaseModel):
    """The answer of a save: where the video now lives."""

    video_id: str
    saved_to_r2: Literal[True] = True
    video_url: str = Field(description="Playable URL: the public one, or a presigned GET")
    r2_key: str
    size_bytes: int
    saved_at: datetime


class TimeBudget(BaseModel):
    """How long this save may take: the transfer's deadline and the lease's length."""

    seconds: float = Field(gt=0)

    @property
    def transfer_deadline(self) -> float:
        return time.monotonic() + max(1.0, self.seconds - FINISH_MARGIN_S)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.seconds + LEASE_MARGIN_S)


def _saved_answer(record: db.VideoRecord) -> SavedVideo:
    if not (record.r2_key and record.saved_at and record.size_bytes is not None):
        raise RuntimeError(f"record {record.video_id} is marked saved but lacks its object fields")
    return SavedVideo(
        video_id=record.video_id,
        video_url=playable_url(record.r2_key),
        r2_key=record.r2_key,
        size_bytes=int(record.size_bytes),
        saved_at=record.saved_at,
    )


def _owned(video_id: str, user_id: str, campaign_id: str | None) -> db.VideoRecord:
    record = db.get_video(video_id, consistent=True)
    if record is None or record.user_id != user_id or (campaign_id is not None and record.campaign_id != campaign_id):
        raise VideoNotFound("no such video in your library", video_id=video_id)
    return record


def _refusal(record: db.VideoRecord) -> VideoLibraryError:
    if record.video_status is not VideoStatus.COMPLETED:
        return WrongState(
            f"only completed videos can be saved; this one is {record.status}",
            video_id=record.video_id,
            status=record.status,
        )
    return SaveInProgress("this video is being saved right now; try again in a moment", video_id=record.video_id)


def save_to_library(user_id: str, request: SaveRequest, budget: TimeBudget) -> SavedVideo:
    record = _owned(request.video_id, user_id, request.campaign_id)
    if record.saved_to_r2:
        return _saved_answer(record)
    if record.video_status is not VideoStatus.COMPLETED:
        raise _refusal(record)

    lease_id = uuid.uuid4().hex
    now = db.utcnow()
    if not db.claim_save_lease(record.video_id, user_id, lease_id, now + budget.lease, now):
        current = _owned(request.video_id, user_id, request.campaign_id)  # what beat us to it?
        if current.saved_to_r2:
            return _saved_answer(current)
        raise _refusal(current)
    return _transfer_under_lease(record, lease_id, budget)


def _count_failure(reason: str) -> None:
    with single_metric(name="SaveFailures", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="reason", value=reason)


def _transfer_under_lease(record: db.VideoRecord, lease_id: str, budget: TimeBudget) -> SavedVideo:
    settings = get_settings()
    key = video_object_key(record.campaign_id, record.video_id)
    started = time.monotonic()
    try:
        size, sha256 = _copy_to_r2(record, key, budget.transfer_deadline)
    except Exception as exc:
        reason = exc.code if isinstance(exc, VideoLibraryError) else "internal_error"
        message = exc.message if isinstance(exc, VideoLibraryError) else "the save failed on our side"
        _count_failure(reason)
        logger.warning("save failed", extra={"video_id": record.video_id, "reason": reason, "detail": str(exc)})
        db.release_save_lease(record.video_id, lease_id, message)
        raise

    try:
        saved = db.record_saved(
            record.video_id,
            lease_id,
            r2_key=key,
            url=stored_object_url(key, settings),
            size_bytes=size,
            sha256=sha256,
            saved_at=db.utcnow(),
        )
    except db.LeaseLost:
        # Our lease expired and another save took over; it owns the object now (same key, same bytes).
        current = db.get_video(record.video_id, consistent=True)
        if current is not None and current.saved_to_r2:
            return _saved_answer(current)
        raise SaveInProgress("another save of this video took over; try again in a moment") from None
    except Exception:
        _undo_unrecorded_object(record.video_id, lease_id, key, sha256)
        _count_failure("record_update_failed")
        raise

    elapsed = time.monotonic() - started
    metrics.add_metric(name="VideosSaved", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BytesSaved", unit=MetricUnit.Bytes, value=size)
    logger.info(
        "video saved",
        extra={
            "video_id": record.video_id,
            "r2_key": key,
            "size_bytes": size,
            "duration_s": round(elapsed, 3),
            "throughput_mib_s": round(size / 1_048_576 / elapsed, 2) if elapsed > 0 else None,
        },
    )
    return _saved_answer(saved)


def _copy_to_r2(record: db.VideoRecord, key: str, deadline: float) -> tuple[int, str]:
    """Stream the provider's file into R2 at ``key``; returns its size and sha256."""
    settings = get_settings()
    # The unwatermarked file is the one worth keeping; watermarked only where the model gives nothing else.
    source_url = record.provider_video_raw_url or record.provider_video_url
    if not source_url:
        raise SourceUnavailable("the provider gave no URL for this video")
    with open_source(
        source_url, policy=SourcePolicy.from_settings(settings), max_bytes=settings.max_video_bytes, deadline=deadline
    ) as source:
        # Metadata travels before the body, so it cannot carry the digest: the record holds the sha256.
        metadata = {"video-id": record.video_id}
        bucket, content_type, chunks = settings.r2_bucket, source.content_type, source.chunks()
        if source.declared_size is not None and source.declared_size <= STREAMING_PUT_MAX:
            stream_put(
                r2_client(),
                bucket=bucket,
                key=key,
                chunks=chunks,
                size=source.declared_size,
                content_type=content_type,
                metadata=metadata,
            )
        else:
            upload_stream(
                r2_client(),
                bucket=bucket,
                key=key,
                chunks=chunks,
                content_type=content_type,
                metadata=metadata,
                part_size=part_size_for(settings.max_video_bytes),
            )
        return source.size, source.sha256


def _undo_unrecorded_object(video_id: str, lease_id: str, key: str, sha256: str) -> None:
    """The record update failed after the upload. Keep the object only if the record points at it after all
    (the write may have landed before the error); remove it if the save is still ours and unrecorded."""
    try:
        current = db.get_video(video_id, consistent=True)
        if current is not None and current.saved_to_r2 and current.sha256 == sha256:
            return
        if current is not None and current.save_lease_id == lease_id:
            r2_client().delete_object(Bucket=get_settings().r2_bucket, Key=key)
            db.release_save_lease(video_id, lease_id, "the save could not be recorded; please try again")
    except Exception:
        # Still unknown: leave the object. Its key is deterministic, so a retry overwrites it, and the purge
        # removes it with the record if the video is never saved.
        logger.exception("could not settle a save whose record update failed", extra={"video_id": video_id})
