"""EventBridge schedule: finish background work that lost its driver (see video_library.sweep).

The event's ``time`` is "now", like the purge's and the reconciliation's.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.observability import logger, metrics, tracer
from video_library.purge import PurgeRequest
from video_library.sweep import run_sweep


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = PurgeRequest.from_event(event).time  # the same Scheduled Event shape, validated the same way
    return run_sweep(now, remaining_ms=context.get_remaining_time_in_millis).model_dump(mode="json")
