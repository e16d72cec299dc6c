"""PiAPI's webhook: who may call it, and what a delivery changes.

PiAPI sends the secret we gave it as plain text in ``x-webhook-secret`` (no HMAC). It is compared in
constant time before the body is even parsed, so an unauthenticated caller learns nothing. Deliveries may
come in any case, repeated, out of order, and for tasks we never stored; the record's status only ever
moves forward (see ``db.apply_task_progress``).

What a task says is checked here, where it enters (the webhook and reconciliation both come through
:func:`apply_task`): URLs by ``piapi.UrlPolicy``, text cut to a storable length, and a status we do not know
acknowledged without touching the record. No content of a delivery makes it fail.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from enum import StrEnum

from video_library import db
from video_library.errors import ServiceNotConfigured, Unauthorized
from video_library.models import TaskProgress
from video_library.observability import MetricUnit, logger, metrics
from video_library.piapi import Task, UrlPolicy, WebhookBody, bounded_text, ended_at, locate_video, points_consumed
from video_library.secrets import Secret, read_secret
from video_library.settings import Settings, get_settings
from video_library.status import VideoStatus

SECRET_HEADER = "x-webhook-secret"  # noqa: S105 (a header name, not a secret)
# Larger than the API's cap: a task echoes its input and PiAPI's free-text messages, and a delivery refused
# for its size is retried by PiAPI and never applied (reconciliation would catch up, minutes later).
MAX_DELIVERY_BYTES = 2 * 1024 * 1024
CANCELLED_REASON = "cancelled at the provider"


class DeliveryResult(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"


def admit_delivery(headers: Mapping[str, str] | None, settings: Settings | None = None) -> None:
    """Count the call and raise unless it carries the configured webhook secret. Fails closed when none is set, and
    when it cannot be read from SSM (``SecretUnavailable``, 503: PiAPI delivers again later)."""
    metrics.add_metric(name="WebhooksReceived", unit=MetricUnit.Count, value=1)
    configured = read_secret(Secret.PIAPI_WEBHOOK_SECRET, settings or get_settings())
    expected = configured.get_secret_value() if configured else ""
    if not expected:
        logger.error("PIAPI_WEBHOOK_SECRET is not set: every webhook call is refused")
        raise ServiceNotConfigured("the webhook is not configured")
    # API Gateway v2 lower-cases header names; the local gateway and tests may not.
    provided = next((v for k, v in (headers or {}).items() if k.lower() == SECRET_HEADER), None) or ""
    if not hmac.compare_digest(provided.encode(), expected.encode()):
        metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
        raise Unauthorized("missing or wrong webhook secret")


def progress_from_task(task: Task, settings: Settings | None = None) -> TaskProgress | None:
    """Turn PiAPI's task object into the change it makes to our record; None when its status is unknown."""
    settings = settings or get_settings()
    status = task.video_status
    if status is None:
        return None
    points = points_consumed(task)
    progress = TaskProgress(
        task_id=task.task_id,
        status=status,
        cost_points=points,
        cost_usd=round(points * settings.piapi_usd_per_point, 6) if points is not None else None,
    )
    if status is VideoStatus.COMPLETED:
        location = locate_video(task.output, UrlPolicy(dev_hosts=settings.dev_insecure_source_hosts))
        for field, problem in location.refused.items():
            # The reason only: the URL is the provider's and may be long or carry a signed token.
            logger.warning("provider URL refused", extra={"task_id": task.task_id, "field": field, "reason": problem})
        if location.video_url is None:
            # Completed with nothing to play is a failure the user should see, not a record stuck "completed".
            refused_video = location.refused.get("video_url")
            failure = (
                f"the provider's video URL cannot be used: {refused_video}"
                if refused_video
                else "the provider completed the task without a video"
            )
            logger.warning("completed task without a usable video URL", extra={"task_id": task.task_id})
            return progress.model_copy(update={"status": VideoStatus.FAILED, "error": failure})
        return progress.model_copy(
            update={
                "provider_video_url": location.video_url,
                "provider_video_raw_url": location.video_raw_url,
                "thumbnail_url": location.thumbnail_url,
                "completed_at": ended_at(task),
            }
        )
    if status is VideoStatus.FAILED:
        if task.was_cancelled:
            return progress.model_copy(update={"error": CANCELLED_REASON})
        return progress.model_copy(update={"error": task.error.describe() if task.error else None})
    return progress


_OUTCOME_RESULT = {
    db.ProgressOutcome.APPLIED: DeliveryResult.APPLIED,
    db.ProgressOutcome.DUPLICATE: DeliveryResult.DUPLICATE,
    db.ProgressOutcome.STALE: DeliveryResult.STALE,
    db.ProgressOutcome.MISSING: DeliveryResult.IGNORED,
}


def apply_progress(progress: TaskProgress) -> DeliveryResult:
    """Apply one piece of news about a PiAPI task to its record (shared by the webhook and reconciliation)."""
    video_id = db.find_video_id_by_task(progress.task_id)
    if video_id is None:
        logger.info("delivery for an unknown task ignored", extra={"task_id": progress.task_id})
        return DeliveryResult.IGNORED
    result = _OUTCOME_RESULT[db.apply_task_progress(video_id, progress)]
    logger.info(
        "task progress",
        extra={"task_id": progress.task_id, "video_id": video_id, "status": progress.status, "result": result},
    )
    if result is DeliveryResult.APPLIED and progress.status is VideoStatus.COMPLETED:
        metrics.add_metric(name="VideosCompleted", unit=MetricUnit.Count, value=1)
    elif result is DeliveryResult.APPLIED and progress.status is VideoStatus.FAILED:
        metrics.add_metric(name="VideosFailed", unit=MetricUnit.Count, value=1)
    return result


def apply_task(task: Task) -> DeliveryResult:
    """Apply what PiAPI says about a task (a webhook delivery, or its answer to reconciliation's question)."""
    progress = progress_from_task(task)
    if progress is None:
        logger.warning(
            "unknown task status: acknowledged, record untouched",
            extra={"task_id": task.task_id, "provider_status": bounded_text(task.status, 64)},
        )
        return DeliveryResult.IGNORED
    return apply_progress(progress)


def handle_delivery(body: WebhookBody) -> DeliveryResult:
    """One authenticated webhook delivery."""
    return apply_task(body.data)
