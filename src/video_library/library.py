"""What the library page needs: a user's videos as a front end shows them, one video, their campaigns, storage
usage.

Records become :class:`VideoView` here and nowhere else: saved videos get URLs on R2 (the public one, or a
presigned GET when the bucket is private) — to play, to download under a name made from the prompt, and for the
thumbnail copied beside the video —; unsaved ones the provider's URLs, with when the preview expires. Counts and
storage usage are read from the usage counters (``usage``): one item, whatever the size of the library.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from video_library import db, listing, usage
from video_library.download_name import attachment, download_filename
from video_library.errors import BadRequest, VideoNotFound
from video_library.expiry import expiring_window, preview_expires_at
from video_library.listing import Show, Sort
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
    thumbnail_url: str | None = Field(
        description="Saved videos: the thumbnail copied into R2 when there was one; otherwise the provider's (which "
        "dies with the preview); null when the model gives none (show the video's first frame)"
    )
    video_url: str | None = Field(
        description="What to play: R2 once saved (presigned if private), else PiAPI's; null once the preview expired"
    )
    video_raw_url: str | None = Field(
        description="The unwatermarked file where there is one (R2 once saved); null once the preview expired"
    )
    download_url: str | None = Field(
        default=None,
        description="Saved videos: a URL that downloads the file as `download_filename` (Content-Disposition: "
        "attachment). Null for previews: the provider's file is on another origin and a browser opens it rather than "
        "downloading it (offer 'Open' on video_raw_url)",
    )
    download_filename: str = Field(description="The name the saved file downloads under, made from the prompt")
    preview_expires_at: datetime | None = Field(
        default=None,
        description="Unsaved videos: when the preview goes away, the earlier of the provider's retention after "
        "completion (PROVIDER_RETENTION_DAYS, an estimate) and the purge (PURGE_AFTER_DAYS after creation); null "
        "once saved",
    )
    preview_expired: bool = Field(
        default=False, description="The provider's file was found gone: the video can no longer be played or saved"
    )
    preview_expired_at: datetime | None = Field(default=None, description="When it was found gone")
    preview_checked_at: datetime | None = Field(
        default=None, description="When a check last found the provider's file still there"
    )
    cost_usd: float | None
    duration_s: float | None = Field(default=None, description="Saved videos: read from the file's own header")
    width: int | None = Field(default=None, description="Saved videos: the picture's width as players show it")
    height: int | None = None
    created_at: datetime
    completed_at: datetime | None
    error: str | None = Field(description="Why the generation failed")


class LibraryCounts(BaseModel):
    """What the listed scope (the caller's library, or the campaign) keeps saved, whatever the filter: kept by the
    same transactions that record and delete saves, read in one request. (Previews are not counted: the purge
    deletes them in bulk every day.)"""

    saved_videos: int
    saved_bytes: int = Field(description="What the saved videos keep in R2 (videos and thumbnails)")


class VideoPage(BaseModel):
    items: list[VideoView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page. A page may hold fewer items than "
        "`limit` (even none) and still have a next_cursor: a filtered listing reads a bounded amount per request"
    )
    counts: LibraryCounts


class StorageUsage(BaseModel):
    campaign_id: str | None
    saved_videos: int
    total_bytes: int = Field(description="Bytes kept in R2 for the saved videos, thumbnails included")
    total_gb: float
    usd_per_gb_month: float
    estimated_monthly_usd: float


class CampaignSummary(BaseModel):
    campaign_id: str
    saved_videos: int
    saved_bytes: int = Field(description="What its saved videos keep in R2 (videos and thumbnails)")
    last_video_at: datetime | None = Field(description="When its latest video was created")


class CampaignPage(BaseModel):
    items: list[CampaignSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


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


def _urls(record: db.VideoRecord) -> dict[str, Any]:
    """Where to play, download and picture the video: R2 once saved, the provider's before (nothing to play once
    the preview expired)."""
    if record.saved_to_r2 and record.r2_key:
        video_url = playable_url(record.r2_key)
        disposition = attachment(record.prompt, record.video_id, record.content_type)
        return {
            "video_url": video_url,
            "video_raw_url": video_url,
            "download_url": playable_url(record.r2_key, content_disposition=disposition),
            "thumbnail_url": playable_url(record.thumbnail_key) if record.thumbnail_key else record.thumbnail_url,
        }
    expired = record.preview_expired_at is not None
    return {
        "video_url": None if expired else record.video_url,
        "video_raw_url": None if expired else record.video_raw_url,
        "download_url": None,
        "thumbnail_url": record.thumbnail_url,
    }


def view_of(record: db.VideoRecord) -> VideoView:
    return VideoView(
        video_id=record.video_id,
        campaign_id=record.campaign_id,
        status=record.video_status,
        provider=record.provider,
        model=record.model,
        task_type=record.task_type,
        prompt=record.prompt,
        **_urls(record),
        download_filename=download_filename(record.prompt, record.video_id, record.content_type),
        preview_expires_at=preview_expires_at(record),
        preview_expired=record.preview_expired_at is not None,
        preview_expired_at=record.preview_expired_at,
        preview_checked_at=record.preview_checked_at,
        cost_usd=float(record.cost_usd) if record.cost_usd is not None else None,
        duration_s=float(record.duration_s) if record.duration_s is not None else None,
        width=int(record.width) if record.width is not None else None,
        height=int(record.height) if record.height is not None else None,
        created_at=record.created_at,
        completed_at=record.completed_at,
        error=record.error,
        **_save_fields(record),
    )


def counts_of(user_id: str, campaign_id: str | None) -> LibraryCounts:
    counts = usage.counts(user_id, campaign_id)
    return LibraryCounts(saved_videos=counts.saved_videos, saved_bytes=counts.saved_bytes)


def list_videos(
    user_id: str,
    *,
    campaign_id: str | None = None,
    status: VideoStatus | None = None,
    saved: bool | None = None,
    show: Show = Show.ALL,
    sort: Sort = Sort.NEWEST,
    search: str | None = None,
    limit: int = 24,
    cursor: str | None = None,
) -> VideoPage:
    """A page of the caller's videos: ``show`` (all, saved, unsaved, failed, expiring soon), ``sort`` (newest,
    oldest, largest), a case-insensitive ``search`` in the prompt, with the scope's counts."""
    if sort is Sort.LARGEST and (show not in (Show.ALL, Show.SAVED) or saved is False):
        raise BadRequest("sort=largest lists saved videos only (a preview has no size yet): use show=all or saved")
    search = search.strip() if search else None
    query = listing.Listing(
        user_id=user_id,
        campaign_id=campaign_id,
        show=show,
        sort=sort,
        search=db.searchable(search) if search else None,
        status=status,
        saved=saved,
        limit=limit,
        cursor=cursor,
        expiring=expiring_window(db.utcnow()) if show is Show.EXPIRING else None,
    )
    try:
        records, next_cursor = listing.list_videos(query)
    except listing.BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    return VideoPage(
        items=[view_of(record) for record in records],
        next_cursor=next_cursor,
        counts=counts_of(user_id, campaign_id),
    )


def list_campaigns(user_id: str, *, limit: int, cursor: str | None) -> CampaignPage:
    """The campaigns the caller has made videos in, in campaign id order, each with its saved counts."""
    try:
        found, next_cursor = usage.campaigns(user_id, limit=limit, cursor=cursor)
    except listing.BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    return CampaignPage(
        items=[
            CampaignSummary(
                campaign_id=counts.campaign_id or "",
                saved_videos=counts.saved_videos,
                saved_bytes=counts.saved_bytes,
                last_video_at=counts.last_video_at,
            )
            for counts in found
        ],
        next_cursor=next_cursor,
    )


def get_video(user_id: str, video_id: str) -> VideoView:
    record = db.get_video(video_id)
    if record is None or record.user_id != user_id or record.deleting_at is not None:
        raise VideoNotFound("no such video in your library", video_id=video_id)
    return view_of(record)


def storage_usage(user_id: str, campaign_id: str | None) -> StorageUsage:
    """What the caller's saved videos (or one campaign's) keep in R2 and cost: one counter item read."""
    counts = usage.counts(user_id, campaign_id)
    total = counts.saved_bytes
    price = get_settings().r2_usd_per_gb_month
    return StorageUsage(
        campaign_id=campaign_id,
        saved_videos=counts.saved_videos,
        total_bytes=total,
        total_gb=round(total / GB, 6),
        usd_per_gb_month=price,
        estimated_monthly_usd=round(total / GB * price, 6),
    )
