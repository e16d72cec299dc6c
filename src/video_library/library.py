"""What the library page needs: a user's videos as a front end shows them, one video, storage usage.

Records become :class:`VideoView` here and nowhere else: saved videos get playable URLs (the public one, or
a presigned GET when the bucket is private), unsaved ones the provider's URLs.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from video_library import db
from video_library.errors import BadRequest, VideoNotFound
from video_library.r2 import playable_url
from video_library.settings import get_settings
from video_library.status import VideoStatus

GB = 1_000_000_000  # R2 bills decimal gigabytes


class VideoView(BaseModel):
    """One video as the front end shows it."""

    video_id: str
    campaign_id: str
    status: VideoStatus
    provider: str | None
    model: str | None
    task_type: str | None
    prompt: str | None
    thumbnail_url: str | None
    video_url: str | None = Field(description="What to play: R2 once saved (presigned if private), else PiAPI's")
    video_raw_url: str | None = Field(description="What to download: the unwatermarked file where there is one")
    saved_to_r2: bool
    size_bytes: int | None
    cost_usd: float | None
    created_at: datetime
    completed_at: datetime | None
    saved_at: datetime | None
    error: str | None = Field(description="Why the generation failed")
    save_error: str | None = Field(description="Why the last Save to Library failed")


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
        saved_to_r2=bool(record.saved_to_r2),
        size_bytes=int(record.size_bytes) if record.size_bytes is not None else None,
        cost_usd=float(record.cost_usd) if record.cost_usd is not None else None,
        created_at=record.created_at,
        completed_at=record.completed_at,
        saved_at=record.saved_at,
        error=record.error,
        save_error=record.save_error,
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
    if record is None or record.user_id != user_id:
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
