"""Reconciliation: webhook delivery is not guaranteed, so ask PiAPI about tasks that went quiet.

A scheduled run reads the sparse ``in_flight_by_age`` index for records still ``pending`` or ``processing``
some minutes after they were created, asks PiAPI (``GET /api/v1/task/{task_id}``) how each task stands, and
applies the answer through exactly the webhook's code path (``webhook.apply_progress``): the same conditional,
forward-only write, so a late webhook and a reconciliation can race harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel

from video_library import db
from video_library.errors import ProviderError
from video_library.observability import MetricUnit, logger, metrics
from video_library.piapi_client import piapi_client
from video_library.settings import get_settings
from video_library.webhook import DeliveryResult, apply_task

MAX_TASKS_PER_RUN = 200
STOP_MARGIN_MS = 10_000


class ReconcileSummary(BaseModel):
    cutoff: datetime
    examined: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    complete: bool = True


def reconcile_quiet_tasks(now: datetime, remaining_ms: Callable[[], int]) -> ReconcileSummary:
    """Bring records whose webhook never came up to date with PiAPI; returns what was done."""
    cutoff = now - timedelta(minutes=get_settings().reconcile_after_minutes)
    summary = ReconcileSummary(cutoff=cutoff)
    quiet = db.in_flight_before(cutoff, limit=MAX_TASKS_PER_RUN)
    client = piapi_client() if quiet else None
    for record in quiet:
        if remaining_ms() < STOP_MARGIN_MS:
            summary.complete = False
            break
        summary.examined += 1
        if client is None or not record.task_id:
            continue
        try:
            task = client.get_task(record.task_id)
        except ProviderError as exc:
            # One task PiAPI cannot answer for must not stop the others; it is asked again next run.
            summary.errors += 1
            logger.warning(
                "PiAPI could not tell a task's state", extra={"task_id": record.task_id, "reason": exc.message}
            )
            continue
        result = apply_task(task)
        if result is DeliveryResult.APPLIED:
            summary.updated += 1
        else:
            summary.unchanged += 1
    if len(quiet) == MAX_TASKS_PER_RUN:
        summary.complete = False
    metrics.add_metric(name="TasksReconciled", unit=MetricUnit.Count, value=summary.updated)
    logger.info("reconciliation finished", extra=summary.model_dump(mode="json"))
    return summary
