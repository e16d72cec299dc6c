"""PiAPI's task object and webhook body, where each model puts its video, and what of it we may keep.

The models follow PiAPI's unified API (``GET /api/v1/task/{task_id}`` returns the task inside
``{"code", "data", "message"}``; the webhook posts ``{"timestamp", "data": <task>}``). They are tolerant:
unknown fields are kept, absent optional ones are ``None``, so a new field from PiAPI never breaks a delivery
(nor does a status we do not know: see ``Task.video_status``).

What is stored from a task is checked where it enters: URLs must be absolute ``https`` URLs we could fetch and
a page could link to (:class:`UrlPolicy`), and free text is cut to :data:`MAX_PROVIDER_TEXT_CHARS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from video_library.settings import HostPort
from video_library.source import SourcePolicy
from video_library.status import VideoStatus, is_provider_cancellation

MAX_URL_CHARS = 2048
MAX_PROVIDER_TEXT_CHARS = 1000
# PiAPI's task ids are UUIDs; DynamoDB refuses index keys over 2,048 bytes, so a longer id cannot be ours.
MAX_TASK_ID_CHARS = 256


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
    video_urls: list[Any] | None = None  # models that answer with a list: the first usable URL is the video


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
        """The most specific message PiAPI gave (cut to a storable length), or None when the error object is
        PiAPI's empty one."""
        parts = [part for part in (self.message, self.raw_message) if part]
        return bounded_text(": ".join(parts)) if parts else None


class Task(_Tolerant):
    """PiAPI's task object (the ``data`` of a webhook body or of ``GET /api/v1/task/{id}``)."""

    task_id: str = Field(min_length=1, max_length=MAX_TASK_ID_CHARS)
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

    @property
    def video_status(self) -> VideoStatus | None:
        """Our status for PiAPI's, or None for a status we do not know (acknowledged, never applied: refusing
        it would only make PiAPI retry, and a later known status still applies)."""
        try:
            return VideoStatus.from_provider(self.status)
        except ValueError:
            return None

    @property
    def was_cancelled(self) -> bool:
        return is_provider_cancellation(self.status)


class WebhookBody(_Tolerant):
    """What PiAPI POSTs to the webhook."""

    timestamp: int | None = None
    data: Task


def bounded_text(text: str, limit: int = MAX_PROVIDER_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (the last one an ellipsis when cut), as storable UTF-8."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # A lone surrogate (possible in a task read back from PiAPI) would make the write to DynamoDB fail.
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class UrlPolicy:
    """Which provider URLs we keep: absolute ``https`` URLs with a host, no credentials, at most
    :data:`MAX_URL_CHARS` printable ASCII characters, that httpx (the save's client) can parse.

    Plain ``http`` only for exactly a development ``host:port`` (``DEV_INSECURE_SOURCE_HOSTS``, the local fake
    PiAPI; refused at start-up on Lambda).
    """

    dev_hosts: tuple[HostPort, ...] = ()

    def problem_with(self, raw: object) -> str | None:
        """Why ``raw`` is not a URL we keep, or None when it is."""
        if not isinstance(raw, str) or not raw:
            return "it is not a URL"
        if len(raw) > MAX_URL_CHARS:
            return f"it is longer than {MAX_URL_CHARS} characters"
        # RFC 3986 URLs are printable ASCII; anything else is read differently by different parsers.
        if not raw.isascii() or not raw.isprintable() or " " in raw:
            return "it holds characters a URL cannot"
        try:
            url = httpx.URL(raw)
            port = url.port
        except (httpx.InvalidURL, ValueError):
            return "it is not a valid URL"
        if url.scheme not in ("https", "http"):
            return "it is not an https URL"
        if not url.host:
            return "it has no host"
        if url.userinfo:
            return "it carries credentials"
        if port is not None and not 0 < port < 65536:
            return "it has an invalid port"
        if url.scheme == "http" and not self._allows_plain_http(url.host, port or 80):
            return "it is plain http"
        return None

    def _allows_plain_http(self, host: str, port: int) -> bool:
        return SourcePolicy(allowed_hosts=(), dev_hosts=self.dev_hosts).is_dev_host(host, port)


class VideoLocation(BaseModel):
    """Where a completed task's files are, whatever the model's output layout; only URLs we keep.

    ``refused`` names each URL that was found but refused (``video_url``, ``video_raw_url``,
    ``thumbnail_url``) and why.
    """

    video_url: str | None
    video_raw_url: str | None
    thumbnail_url: str | None
    refused: dict[str, str] = Field(default_factory=dict)


def _first_non_empty(*candidates: str | None) -> str | None:
    return next((candidate for candidate in candidates if candidate), None)


def _checked(
    name: str, candidates: Iterable[object], problem_with: Callable[[object], str | None], refused: dict[str, str]
) -> str | None:
    """The first candidate that is a URL we keep (None if none is); the first refused one's problem is noted."""
    for candidate in candidates:
        if not candidate:
            continue
        problem = problem_with(candidate)
        if problem is None:
            return candidate if isinstance(candidate, str) else None
        refused.setdefault(name, problem)
    return None


def locate_video(output: TaskOutput | None, policy: UrlPolicy | None = None) -> VideoLocation:
    """Find the video, its raw (unwatermarked) version and a thumbnail in any of PiAPI's output layouts.

    ``video_raw_url`` is the unwatermarked file where the model gives one we keep, else the same as
    ``video_url``. Where a layout gives one URL, that is the one checked; from a ``video_urls`` list, the
    first usable URL is taken.
    """
    if output is None:
        return VideoLocation(video_url=None, video_raw_url=None, thumbnail_url=None)
    problem_with = (policy or UrlPolicy()).problem_with
    refused: dict[str, str] = {}
    work = next((work for work in output.works if work.video and work.video.resource), None)
    work_video = work.video if work else None
    work_cover = work.cover if work else None
    luma_video = output.video if isinstance(output.video, MediaRef) else None
    plain_video = output.video if isinstance(output.video, str) else None

    named_video = _first_non_empty(
        output.video_url,
        plain_video,
        luma_video.url if luma_video else None,
        work_video.resource if work_video else None,
    )
    video_candidates: list[object] = [named_video] if named_video else list(output.video_urls or [])
    video_url = _checked("video_url", video_candidates, problem_with, refused)
    named_raw = _first_non_empty(
        output.video_raw.url if output.video_raw else None,
        work_video.resource_without_watermark if work_video else None,
    )
    raw_url = _checked("video_raw_url", [named_raw], problem_with, refused) if video_url else None
    thumbnail_url = _first_non_empty(
        output.thumbnail.url if output.thumbnail else None,
        output.thumbnail_url,
        output.cover_url,
        work_cover.resource_without_watermark if work_cover else None,
        work_cover.resource if work_cover else None,
    )
    return VideoLocation(
        video_url=video_url,
        video_raw_url=raw_url or video_url,
        thumbnail_url=_checked("thumbnail_url", [thumbnail_url], problem_with, refused),
        refused=refused,
    )


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
    """The points PiAPI charged, or None when it does not say (or says something no bill can be)."""
    usage = task.meta.usage if task.meta else None
    consumed = usage.consume if usage else None
    if consumed is None or not 0 <= consumed <= 2**53:
        return None
    return consumed
