"""What the library page needs: a user's videos as a front end shows them, one video, storage usage.

Records become :class:`VideoView` here and nowhere else: saved videos get playable URLs (the public one, or
a presigned GET when the bucket is private), unsaved ones the provider's URLs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from video_library import db
from video_library.errors import BadRequest, VideoNotFound
from video_library.r2 import playable_url
from video_library.save_state import SaveState
from video_library.settings import get_settings
from video_library.status import VideoStatus

GB = 1_000_000_000  # R2 bills decimal gigabytes


class SaveError(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. source_gone, source_too_large, gave_up")
    message: str = Field(description="For people")


class SaveStatus(BaseModel):
    """Where a video's Save to Library stands: what the save route answers, and part of every video view."""

    video_id: str
    save_state: SaveState = Field(description="none, queued, saving, saved or failed")
    saved_to_r2: bool
    r2_key: str | None = Field(default=None, description="The object's key in the bucket, once saved")
    bytes_copied: int | None = Field(default=None, description="While saving: bytes copied so far (every few s)")
    size_bytes: int | None = Field(description="Saved: the object's size; while saving: the size, when announced")
    save_attempts: int | None = Field(default=None, description="Attempts the current save has made")
    save_max_attempts: int = Field(description="Attempts a save gets before it fails for good (SAVE_MAX_ATTEMPTS)")
    save_requested_at: datetime | None = None
    save_started_at: datetime | None = Field(default=None, description="When the current (or last) attempt began")
    saved_at: datetime | None
    save_error: SaveError | None = Field(
        description="Why the save failed (failed), or why its last attempt did (queued again for a retry)"
    )


class VideoView(SaveStatus):
    """One video as the front end shows it."""

    campaign_id: str
    status: VideoStatus
    provider: str | None
    model: str | None
    task_type: str | None
    prompt: str | None
    thumbnail_url: str | None
    video_url: str | None = Field(description="What to play: R2 once saved (presigned if private), else PiAPI's")
    video_raw_url: str | None = Field(description="What to download: the unwatermarked file where there is one")
    cost_usd: float | None
    duration_s: float | None = Field(default=None, description="Saved videos: read from the file's own header")
    width: int | None = Field(default=None, description="Saved videos: the picture's width as players show it")
    height: int | None = None
    created_at: datetime
    completed_at: datetime | None
    error: str | None = Field(description="Why the generation failed")


class VideoPage(BaseModel):
    items: list[VideoView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class StorageUsage(BaseModel):
    campaign_id: str | None
    saved_videos: int
    total_bytes: int
    total_gb: float
    usd_per_gb_month: float
    estimated_monthly_usd: float


def _save_state_shown(record: db.VideoRecord) -> SaveState:
    state = record.save_status
    # A transfer whose lease ran out was killed: what the user can expect is the next attempt.
    if state is SaveState.SAVING and not record.lease_is_live(db.utcnow()):
        return SaveState.QUEUED
    return state


def _save_fields(record: db.VideoRecord) -> dict[str, Any]:
    """Where the video's save stands, as every view of a video shows it."""
    state = _save_state_shown(record)
    error = record.save_error if state is not SaveState.SAVED else None
    return {
        "save_state": state,
        "saved_to_r2": bool(record.saved_to_r2),
        "r2_key": record.r2_key if record.saved_to_r2 else None,
        "bytes_copied": int(record.bytes_copied) if record.bytes_copied is not None and state.in_progress else None,
        "size_bytes": int(record.size_bytes) if record.size_bytes is not None else None,
        "save_attempts": int(record.save_attempts) if record.save_attempts is not None else None,
        "save_max_attempts": get_settings().save_max_attempts,
        "save_requested_at": record.save_requested_at,
        "save_started_at": record.save_started_at,
        "saved_at": record.saved_at,
        "save_error": SaveError(code=record.save_error_code or "save_failed", message=error) if error else None,
    }


def save_status_of(record: db.VideoRecord) -> SaveStatus:
    return SaveStatus(video_id=record.video_id, **_save_fields(record))


def view_of(record: db.VideoRecord) -> VideoView:
    if record.saved_to_r2 and record.r2_key:
        video_url = raw_url = playable_url(record.r2_key)
    else:
        video_url, raw_url = record.video_url, record.video_raw_url
    return VideoView(
        video_id=record.video_id,
        campaign_id=record.campaign_id,
        status=record.video_status,
        provider=record.provider,
        model=record.model,
        task_type=record.task_type,
        prompt=record.prompt,
        thumbnail_url=record.thumbnail_url,
        video_url=video_url,
        video_raw_url=raw_url,
        cost_usd=float(record.cost_usd) if record.cost_usd is not None else None,
        duration_s=float(record.duration_s) if record.duration_s is not None else None,
        width=int(record.width) if record.width is not None else None,
        height=int(record.height) if record.height is not None else None,
        created_at=record.created_at,
        completed_at=record.completed_at,
        error=record.error,
        **_save_fields(record),
    )


def list_videos(
    user_id: str,
    *,
    campaign_id: str | None,
    status: VideoStatus | None,
    saved: bool | None,
    limit: int,
    cursor: str | None,
) -> VideoPage:
    try:
        records, next_cursor = db.user_videos(
            user_id, campaign_id=campaign_id, status=status, saved=saved, limit=limit, cursor=cursor
        )
    except db.BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    return VideoPage(items=[view_of(record) for record in records], next_cursor=next_cursor)


def get_video(user_id: str, video_id: str) -> VideoView:
    record = db.get_video(video_id)
    if record is None or record.user_id != user_id or record.deleting_at is not None:
        raise VideoNotFound("no such video in your library", video_id=video_id)
    return view_of(record)


def storage_usage(user_id: str, campaign_id: str | None) -> StorageUsage:
    saved = db.saved_videos(user_id, campaign_id)
    total = sum(int(record.size_bytes or 0) for record in saved)
    price = get_settings().r2_usd_per_gb_month
    return StorageUsage(
        campaign_id=campaign_id,
        saved_videos=len(saved),
        total_bytes=total,
        total_gb=round(total / GB, 6),
        usd_per_gb_month=price,
        estimated_monthly_usd=round(total / GB * price, 6),
    )
