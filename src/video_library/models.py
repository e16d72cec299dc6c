"""Domain models that cross layers: what the logic hands to data access, independent of DynamoDB."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from video_library.status import VideoStatus

CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class NewVideo(BaseModel):
    """A video record as it is first stored, when its generation is requested."""

    user_id: str = Field(min_length=1)
    # Part of the object key in R2 (campaigns/{campaign_id}/...): no slashes or dots, ever.
    campaign_id: str = Field(pattern=CAMPAIGN_ID_PATTERN)
    prompt: str
    model: str | None = None
    provider: str | None = None
    task_type: str | None = None
    task_id: str | None = None
    status: VideoStatus = VideoStatus.PENDING
    created_at: datetime | None = None  # None: now


class TaskProgress(BaseModel):
    """What one PiAPI delivery says about a task, ready to be applied to its record."""

    task_id: str
    status: VideoStatus
    provider_video_url: str | None = None
    provider_video_raw_url: str | None = None
    thumbnail_url: str | None = None
    cost_points: int | None = None
    cost_usd: float | None = None
    completed_at: datetime | None = None
    error: str | None = None
