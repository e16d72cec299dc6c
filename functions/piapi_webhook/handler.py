"""POST /webhooks/piapi: PiAPI reports a task's progress.

The secret is checked before the resolver runs: Powertools validates the body before any middleware,
and an unauthenticated caller must learn nothing, not even that its body was malformed.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.errors import VideoLibraryError
from video_library.http import json_response, register_error_handlers
from video_library.observability import logger, metrics, tracer
from video_library.piapi import WebhookBody
from video_library.webhook import admit_delivery, handle_delivery

app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app, validation_status=HTTPStatus.BAD_REQUEST)


@app.post("/webhooks/piapi", summary="PiAPI task progress (secret in x-webhook-secret)")
def receive_delivery(body: WebhookBody) -> dict[str, str]:
    return {"result": handle_delivery(body).value}


# log_event stays off whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event carries the secret twice.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        admit_delivery(event.get("headers"))
    except VideoLibraryError as exc:
        return json_response(exc.status, exc.to_body())
    return app.resolve(event, context)
