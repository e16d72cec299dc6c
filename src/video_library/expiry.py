"""When a preview goes away, and finding out that it has.

A preview (a video not saved) lives at the provider's URLs until the provider deletes its files, and as a record
until the purge deletes it. So its **expiry** is the earlier of:

- the provider's retention after completion, ``PROVIDER_RETENTION_DAYS`` (PiAPI does not publish it: an
  estimate, 7 days by default, what other aggregators keep);
- the purge, ``PURGE_AFTER_DAYS`` after creation.

Being an estimate, the provider's part can be wrong both ways. What is known for sure is recorded on the record
(``preview_expired_at``): a save whose download the provider answers 403/404/410 (``transfer``), or a **check**
(:func:`check_previews`). An expired preview can never be saved (the save route answers 409 ``preview_expired``).

The check is cheap and bounded: the same guarded request a save makes (source policy, address checked where the
socket connects, redirects re-checked) but for the first byte only (``download.probe_source``), for at most
``MAX_CHECKS`` of the caller's own previews per request, ``CHECK_THREADS`` at a time, within ``CHECK_TIME_S``, and
not again within ``CHECK_COOLDOWN`` of a check that found the file. The page asks for it for the previews it shows
whose expiry is near or past. (Reconciliation never sees these records: it reads only tasks still in flight.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictStr

from video_library import db
from video_library.deadline import Deadline
from video_library.download import Presence, probe_source
from video_library.errors import VideoLibraryError, VideoNotFound
from video_library.listing import ExpiringWindow
from video_library.observability import MetricUnit, logger, metrics
from video_library.settings import Settings, get_settings
from video_library.source import SourcePolicy
from video_library.status import VideoStatus

# "Expiring soon": the preview's expiry falls within this much of now (or has passed without the file being found
# gone yet).
EXPIRING_SOON = timedelta(days=3)
# The purge runs once a day: a record may outlive its purge time by up to a day (two, to be safe).
PURGE_SLACK = timedelta(days=2)
MAX_CHECKS = 50
CHECK_THREADS = 8
# The whole check request (API Gateway ends requests at 30 s) and each probe within it.
CHECK_TIME_S = 20.0
PROBE_TIME_S = 8.0
# A file found present is not asked about again this soon (a page reloading must not hammer the provider).
CHECK_COOLDOWN = timedelta(minutes=10)


def preview_expires_at(record: db.VideoRecord, settings: Settings | None = None) -> datetime | None:
    """When the preview goes away (estimated): None for a saved video, which never does."""
    if record.saved_to_r2:
        return None
    settings = settings or get_settings()
    purged_at = record.created_at + timedelta(days=settings.purge_after_days)
    if record.status != VideoStatus.COMPLETED.value:
        return purged_at
    completed = record.completed_at or record.created_at
    return min(completed + timedelta(days=settings.provider_retention_days), purged_at)


def expiring_window(now: datetime, settings: Settings | None = None) -> ExpiringWindow:
    """The conditions a listing of previews expiring within ``EXPIRING_SOON`` of ``now`` puts on record times."""
    settings = settings or get_settings()
    retention = timedelta(days=settings.provider_retention_days)
    purge = timedelta(days=settings.purge_after_days)
    horizon = now + EXPIRING_SOON
    return ExpiringWindow(
        # A record older than this has been purged (give or take a daily run).
        created_from=now - purge - PURGE_SLACK,
        # Completion comes after creation, so no record created later can expire before the horizon.
        created_to=horizon - min(retention, purge),
        completed_by=horizon - retention,
        created_by=horizon - purge,
    )


VideoId = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class PreviewCheckRequest(BaseModel):
    """Body of ``POST /api/video/check-previews``."""

    video_ids: list[VideoId] = Field(min_length=1, max_length=MAX_CHECKS)


class PreviewState(StrEnum):
    AVAILABLE = "available"  # the provider still has the file (found now, or by a check a few minutes ago)
    EXPIRED = "expired"  # the provider's file is gone: marked on the record, it can no longer be saved
    UNKNOWN = "unknown"  # no clear answer from the provider (or no time left to ask): nothing changed
    NOT_A_PREVIEW = "not_a_preview"  # saved, or not completed: there is no provider file to check


class PreviewCheck(BaseModel):
    video_id: str
    status: int = Field(description="200, or what a single request about this video would answer (404)")
    preview: PreviewState | None = None
    checked_at: datetime | None = Field(default=None, description="When the answer was found")
    preview_expires_at: datetime | None = None
    detail: str | None = Field(default=None, description="What the provider answered, in words")
    error: dict[str, Any] | None = Field(default=None, description="The error body's `error`, when refused")


class PreviewCheckAnswer(BaseModel):
    results: list[PreviewCheck]
    expired: int = Field(description="Previews whose file is gone (found now or before)")
    available: int
    unknown: int
    refused: int = Field(description="Videos that are not the caller's (404)")


def _check_one(user_id: str, video_id: str, request: Deadline, policy: SourcePolicy) -> PreviewCheck:
    record = db.get_video(video_id, consistent=True)
    if record is None or record.user_id != user_id or record.deleting_at is not None:
        error = VideoNotFound("no such video in your library", video_id=video_id)
        return PreviewCheck(video_id=video_id, status=int(error.status), error=error.to_body()["error"])
    expires = preview_expires_at(record)

    def answer(state: PreviewState, at: datetime | None = None, detail: str | None = None) -> PreviewCheck:
        return PreviewCheck(
            video_id=video_id, status=200, preview=state, checked_at=at, preview_expires_at=expires, detail=detail
        )

    if record.saved_to_r2 or record.status != VideoStatus.COMPLETED.value:
        return answer(PreviewState.NOT_A_PREVIEW)
    if record.preview_expired_at is not None:
        return answer(PreviewState.EXPIRED, record.preview_expired_at)
    now = db.utcnow()
    if record.preview_checked_at is not None and record.preview_checked_at > now - CHECK_COOLDOWN:
        return answer(PreviewState.AVAILABLE, record.preview_checked_at, "checked a few minutes ago")
    source_url = record.provider_video_raw_url or record.provider_video_url
    if not source_url:
        return answer(PreviewState.UNKNOWN, detail="the provider gave no URL for this video")
    seconds = min(PROBE_TIME_S, request.remaining())
    if seconds <= 1.0:
        return answer(PreviewState.UNKNOWN, detail="not checked: the request ran out of time")
    result = probe_source(source_url, policy=policy, deadline=Deadline.after(seconds))
    now = db.utcnow()
    if result.presence is Presence.AVAILABLE:
        db.record_preview_available(video_id, now)
        return answer(PreviewState.AVAILABLE, now, result.detail)
    if result.presence is Presence.GONE:
        if db.mark_preview_expired(video_id, now):
            logger.info("preview found expired", extra={"video_id": video_id, "detail": result.detail})
            return answer(PreviewState.EXPIRED, now, result.detail)
        # Saved, deleted or marked meanwhile: say what the record says now.
        current = db.get_video(video_id, consistent=True)
        if current is None or current.deleting_at is not None:
            error = VideoNotFound("no such video in your library", video_id=video_id)
            return PreviewCheck(video_id=video_id, status=int(error.status), error=error.to_body()["error"])
        if current.preview_expired_at is not None:
            return answer(PreviewState.EXPIRED, current.preview_expired_at, result.detail)
        return answer(PreviewState.NOT_A_PREVIEW)
    logger.info("preview check without a clear answer", extra={"video_id": video_id, "detail": result.detail})
    return answer(PreviewState.UNKNOWN, detail=result.detail)


def check_previews(user_id: str, request: PreviewCheckRequest) -> PreviewCheckAnswer:
    """Ask the provider whether each of the caller's previews still has its file; record what is found."""
    ids = list(dict.fromkeys(request.video_ids))
    deadline = Deadline.after(CHECK_TIME_S)
    policy = SourcePolicy.from_settings(get_settings())

    def check(video_id: str) -> PreviewCheck:
        try:
            return _check_one(user_id, video_id, deadline, policy)
        except VideoLibraryError as exc:
            return PreviewCheck(video_id=video_id, status=int(exc.status), error=exc.to_body()["error"])

    with ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="preview-check") as pool:
        results = list(pool.map(check, ids))
    answer = PreviewCheckAnswer(
        results=results,
        expired=sum(1 for r in results if r.preview is PreviewState.EXPIRED),
        available=sum(1 for r in results if r.preview is PreviewState.AVAILABLE),
        unknown=sum(1 for r in results if r.preview is PreviewState.UNKNOWN),
        refused=sum(1 for r in results if r.status != HTTPStatus.OK),
    )
    metrics.add_metric(name="PreviewsChecked", unit=MetricUnit.Count, value=len(results))
    return answer
