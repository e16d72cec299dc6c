"""POST /api/video/save-to-library: the user keeps generated videos for good.

The request checks and queues; the worker (functions/save_worker) copies. The caller is checked before the
resolver runs (Powertools validates the body first), so an unauthenticated request gets 401 whatever its body.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.errors import (
    PreviewExpired,
    SaveInProgress,
    SaveQueueUnavailable,
    ServiceNotConfigured,
    SourceGone,
    SourceNotAllowed,
    VideoNotFound,
    WrongState,
)
from video_library.http import caller_id, register_error_handlers, resolve_for_signed_in_user, route_answers
from video_library.library import SaveStatus
from video_library.observability import logger, metrics, tracer
from video_library.save import BulkSaveAnswer, SaveRequest, request_save, request_saves
from video_library.snapstart import register_hooks

# With SnapStart (apiSnapStart), environments restored from one snapshot are made distinct again.
register_hooks()
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)


@app.post(
    "/api/video/save-to-library",
    summary="Save videos to the library (R2): answers at once, the copy runs in the background",
    tags=["save"],
    responses=route_answers(
        {
            200: {
                "description": "Already saved (single), or nothing was queued (bulk)",
                "content": {"application/json": {"model": SaveStatus | BulkSaveAnswer}},
            },
            202: {
                "description": "Queued or running: follow save_state on the video (single), or each result (bulk)",
                "content": {"application/json": {"model": SaveStatus | BulkSaveAnswer}},
            },
        },
        # A single save's refusals; a bulk save answers 200/202 with each video's outcome in its results.
        VideoNotFound,
        WrongState,
        SaveInProgress,
        PreviewExpired,
        SourceNotAllowed,
        SourceGone,  # the provider gave no URL at all
        SaveQueueUnavailable,
        ServiceNotConfigured,  # SAVE_QUEUE_URL unset
    ),
)
def save(body: SaveRequest) -> Response[SaveStatus | BulkSaveAnswer]:
    user = caller_id(app.current_event.raw_event)
    if body.is_bulk:
        answer = request_saves(user, body)
        status = HTTPStatus.ACCEPTED if answer.queued or answer.in_progress else HTTPStatus.OK
        return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=answer)
    assert body.video_id is not None  # the model's validator
    single = request_save(user, body.video_id, body.campaign_id)
    return Response(status_code=single.status, content_type=content_types.APPLICATION_JSON, body=single.save)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_signed_in_user(app, event, context)
