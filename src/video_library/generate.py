"""Generating a video: ask PiAPI for it and keep a ``pending`` record that the webhook will complete."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from video_library import db, quota
from video_library.errors import ProviderError, ProviderUnreachable, ServiceNotConfigured
from video_library.models import CAMPAIGN_ID_PATTERN, NewVideo
from video_library.observability import MetricUnit, logger, metrics
from video_library.piapi import Task, provider_of
from video_library.piapi_client import piapi_client
from video_library.secrets import SecretUnavailable
from video_library.settings import get_settings
from video_library.status import VideoStatus

# The video models and task types PiAPI documents for its unified task API (piapi.ai/docs: Kling, Hunyuan,
# WanX, Dream Machine (Luma), Hailuo). Anything else is refused before a request is made.
SUPPORTED_TASKS: dict[str, frozenset[str]] = {
    "Qubico/hunyuan": frozenset({"txt2video", "fast-txt2video", "img2video-concat", "img2video-replace"}),
    "Qubico/wanx": frozenset({"txt2video-1.3b", "txt2video-14b", "img2video-14b"}),
    "kling": frozenset({"video_generation", "omni_video_generation"}),
    "luma": frozenset({"video_generation"}),
    "hailuo": frozenset({"video_generation"}),
}
MAX_PROMPT_CHARS = 2500
# Input keys the caller may not set: the prompt comes from its own field.
_RESERVED_INPUT = frozenset({"prompt"})


class GenerateRequest(BaseModel):
    """Body of ``POST /api/video/generate``."""

    campaign_id: str = Field(pattern=CAMPAIGN_ID_PATTERN)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str = Field(default="Qubico/hunyuan", examples=["Qubico/hunyuan", "kling", "luma"])
    task_type: str = Field(default="txt2video", examples=["txt2video", "video_generation"])
    options: dict[str, Any] = Field(
        default_factory=dict, description="Model-specific input passed to PiAPI as is (duration, aspect_ratio, ...)"
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is blank")
        return value.strip()

    @model_validator(mode="after")
    def _documented_pair(self) -> GenerateRequest:
        task_types = SUPPORTED_TASKS.get(self.model)
        if task_types is None:
            raise ValueError(f"unsupported model {self.model!r}; use one of {sorted(SUPPORTED_TASKS)}")
        if self.task_type not in task_types:
            raise ValueError(f"model {self.model!r} does not do {self.task_type!r}; use one of {sorted(task_types)}")
        if reserved := _RESERVED_INPUT & self.options.keys():
            raise ValueError(f"options may not set {sorted(reserved)}")
        return self


def generate_video(user_id: str, request: GenerateRequest) -> db.VideoRecord:
    """Take one unit of the caller's generate quota, create the PiAPI task, then the ``pending`` record that its
    webhook deliveries will move forward. QuotaExceeded (429) before anything is asked of PiAPI."""
    taken = quota.take(quota.GENERATE, user_id, get_settings().generate_quota_per_hour, quota.utcnow())
    task = _create_task(request, taken)
    record = db.create_video(
        NewVideo(
            user_id=user_id,
            campaign_id=request.campaign_id,
            prompt=request.prompt,
            model=request.model,
            provider=provider_of(request.model),
            task_type=request.task_type,
            task_id=task.task_id,
            status=VideoStatus.PENDING,
        )
    )
    metrics.add_metric(name="VideosRequested", unit=MetricUnit.Count, value=1)
    logger.info("video requested", extra={"video_id": record.video_id, "task_id": task.task_id, "model": request.model})
    return record


def _create_task(request: GenerateRequest, taken: quota.Taken) -> Task:
    try:
        return piapi_client().create_task(
            model=request.model, task_type=request.task_type, task_input={**request.options, "prompt": request.prompt}
        )
    except (ServiceNotConfigured, SecretUnavailable, ProviderUnreachable):
        quota.give_back(taken)  # nothing was sent
        raise
    except ProviderError as exc:
        # PiAPI answered with a refusal: no task, nothing spent. Without an answer (a timeout, a connection reset
        # after sending) the task may exist and be billed, so the unit stays taken.
        if "provider_status" in exc.details:
            quota.give_back(taken)
        raise
