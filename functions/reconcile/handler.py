"""EventBridge schedule: ask PiAPI about tasks whose webhook never came (see video_library.reconcile).

The event's ``time`` is "now", like the purge's, so a replayed or hand-made event decides the cutoff.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.observability import logger, metrics, tracer
from video_library.purge import PurgeRequest
from video_library.reconcile import reconcile_quiet_tasks


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = PurgeRequest.from_event(event).time  # the same Scheduled Event shape, validated the same way
    summary = reconcile_quiet_tasks(now, remaining_ms=context.get_remaining_time_in_millis)
    return summary.model_dump(mode="json")
