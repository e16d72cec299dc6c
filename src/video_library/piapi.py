"""PiAPI's task object and webhook body, and where each model puts its video.

The models follow PiAPI's unified API (``GET /api/v1/task/{task_id}`` returns the task inside
``{"code", "data", "message"}``; the webhook posts ``{"timestamp", "data": <task>}``). They are tolerant:
unknown fields are kept, absent optional ones are ``None``, so a new field from PiAPI never breaks a delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from video_library.status import VideoStatus


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class MediaRef(_Tolerant):
    """Luma's ``{"url", "width", "height"}``."""

    url: str | None = None


class KlingResource(_Tolerant):
    """Kling's ``works[].video`` / ``works[].cover``: the watermarked resource and, where given, a clean one."""

    resource: str | None = None
    resource_without_watermark: str | None = None


class KlingWork(_Tolerant):
    video: KlingResource | None = None
    cover: KlingResource | None = None


class TaskOutput(_Tolerant):
    """Every output layout PiAPI's video models use; each field is present only for some models."""

    video_url: str | None = None  # Hunyuan, Hailuo, Wan
    video: str | MediaRef | None = None  # str: Kling 3.x, Sora 2, Seedance; MediaRef: Luma (watermarked)
    video_raw: MediaRef | None = None  # Luma, unwatermarked
    works: list[KlingWork] = Field(default_factory=list)  # Kling
    thumbnail: MediaRef | None = None  # Luma
    thumbnail_url: str | None = None
    cover_url: str | None = None  # Hailuo


class TaskUsage(_Tolerant):
    type: str | None = None
    frozen: int | None = None
    consume: int | None = None


class TaskMeta(_Tolerant):
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    usage: TaskUsage | None = None


class TaskError(_Tolerant):
    code: int | None = None
    message: str | None = None
    raw_message: str | None = None

    def describe(self) -> str | None:
        """The most specific message PiAPI gave, or None when the error object is PiAPI's empty one."""
        parts = [part for part in (self.message, self.raw_message) if part]
        return ": ".join(parts) if parts else None


class Task(_Tolerant):
    """PiAPI's task object (the ``data`` of a webhook body or of ``GET /api/v1/task/{id}``)."""

    task_id: str = Field(min_length=1)
    model: str | None = None
    task_type: str | None = None
    status: str = Field(min_length=1)
    input: dict[str, Any] | None = None
    output: TaskOutput | None = None
    meta: TaskMeta | None = None
    error: TaskError | None = None
    config: dict[str, Any] | None = None

    @field_validator("output", mode="before")
    @classmethod
    def _empty_output_is_none(cls, value: object) -> object:
        # PiAPI sends [] or {} (and sometimes null) before a task has output.
        return None if value in ({}, [], None) else value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        VideoStatus.from_provider(value)  # raises ValueError → a validation error, answered 400
        return value

    @property
    def video_status(self) -> VideoStatus:
        return VideoStatus.from_provider(self.status)


class WebhookBody(_Tolerant):
    """What PiAPI POSTs to the webhook."""

    timestamp: int | None = None
    data: Task


class VideoLocation(BaseModel):
    """Where a completed task's files are, whatever the model's output layout."""

    video_url: str | None
    video_raw_url: str | None
    thumbnail_url: str | None


def _first_non_empty(*candidates: str | None) -> str | None:
    return next((candidate for candidate in candidates if candidate), None)


def locate_video(output: TaskOutput | None) -> VideoLocation:
    """Find the video, its raw (unwatermarked) version and a thumbnail in any of PiAPI's output layouts.

    ``video_raw_url`` is the unwatermarked file where the model gives one, else the same as ``video_url``.
    """
    if output is None:
        return VideoLocation(video_url=None, video_raw_url=None, thumbnail_url=None)
    work = next((work for work in output.works if work.video and work.video.resource), None)
    work_video = work.video if work else None
    work_cover = work.cover if work else None
    luma_video = output.video if isinstance(output.video, MediaRef) else None
    plain_video = output.video if isinstance(output.video, str) else None

    video_url = _first_non_empty(
        output.video_url,
        plain_video,
        luma_video.url if luma_video else None,
        work_video.resource if work_video else None,
    )
    raw_url = _first_non_empty(
        output.video_raw.url if output.video_raw else None,
        work_video.resource_without_watermark if work_video else None,
        video_url,
    )
    thumbnail_url = _first_non_empty(
        output.thumbnail.url if output.thumbnail else None,
        output.thumbnail_url,
        output.cover_url,
        work_cover.resource_without_watermark if work_cover else None,
        work_cover.resource if work_cover else None,
    )
    return VideoLocation(video_url=video_url, video_raw_url=raw_url, thumbnail_url=thumbnail_url)


def provider_of(model: str | None) -> str | None:
    """``Qubico/hunyuan`` → ``hunyuan``; ``kling`` → ``kling``: the video provider behind a PiAPI model."""
    if not model:
        return None
    return model.rsplit("/", 1)[-1].strip().lower() or None


# PiAPI uses year 1 ("0001-01-01T00:00:00Z") for "not yet".
_NOT_YET = datetime(1971, 1, 1, tzinfo=UTC)


def ended_at(task: Task) -> datetime | None:
    """When PiAPI says the task ended, or None when it has not (or does not say)."""
    ended = task.meta.ended_at if task.meta else None
    if ended is None or ended.tzinfo is None or ended < _NOT_YET:
        return None
    return ended


def points_consumed(task: Task) -> int | None:
    usage = task.meta.usage if task.meta else None
    return usage.consume if usage else None
