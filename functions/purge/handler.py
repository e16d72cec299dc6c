"""EventBridge schedule (daily): delete the previews nobody saved within PURGE_AFTER_DAYS.

The event's ``time`` is "now" for the run, so a replayed event or a manual
``serverless invoke -f purge --path events/purge.json`` decides the cutoff; ``detail`` may carry
``{"dry_run": true}`` and ``{"max_items": N}``. A malformed event raises before anything is deleted.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.observability import logger, metrics, tracer
from video_library.purge import PurgeRequest, purge_expired_previews


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PurgeRequest.from_event(event)
    summary = purge_expired_previews(request, remaining_ms=context.get_remaining_time_in_millis)
    return summary.as_dict()
