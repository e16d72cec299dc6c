"""POST /api/video/save-to-library: the user keeps a generated video for good.

The caller is checked before the resolver runs (Powertools validates the body first), so an
unauthenticated request gets 401 whatever its body.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.http import caller_id, register_error_handlers, resolve_for_signed_in_user
from video_library.observability import logger, metrics, trace_downloads, tracer
from video_library.save import SavedVideo, SaveRequest, TimeBudget, save_to_library

trace_downloads()
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)


@app.post("/api/video/save-to-library", summary="Save a completed video to the library (R2)")
def save(body: SaveRequest) -> SavedVideo:
    budget = TimeBudget(seconds=app.lambda_context.get_remaining_time_in_millis() / 1000)
    return save_to_library(caller_id(app.current_event.raw_event), body, budget)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_signed_in_user(app, event, context)
