"""POST /webhooks/piapi: PiAPI reports a task's progress.

The secret is checked before the resolver runs: Powertools validates the body before any middleware,
and an unauthenticated caller must learn nothing, not even that its body was malformed. Then the front
door (``request_gate``) refuses any body that is not one JSON object, before the resolver sees it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.errors import ServiceNotConfigured, Unauthorized, VideoLibraryError
from video_library.http import refusal, register_error_handlers, route_answers
from video_library.observability import logger, metrics, tracer
from video_library.piapi import WebhookBody
from video_library.request_gate import admit_json_body
from video_library.snapstart import register_hooks
from video_library.webhook import MAX_DELIVERY_BYTES, admit_delivery, handle_delivery

# With SnapStart (apiSnapStart), environments restored from one snapshot are made distinct again.
register_hooks()
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app, validation_status=HTTPStatus.BAD_REQUEST)


@app.post(
    "/webhooks/piapi",
    summary="PiAPI task progress (secret in x-webhook-secret)",
    tags=["webhooks"],
    security=[{"webhookSecret": []}],
    # Both raised by admit_delivery, before the body is read: a wrong or missing secret, PIAPI_WEBHOOK_SECRET unset.
    responses=route_answers(
        {200: "applied, duplicate, stale or ignored (nothing to retry)"}, Unauthorized, ServiceNotConfigured
    ),
)
def receive_delivery(body: WebhookBody) -> dict[str, str]:
    return {"result": handle_delivery(body).value}


# log_event stays off whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event carries the secret twice.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        admit_delivery(event.get("headers"))
        admitted = admit_json_body(event, max_bytes=MAX_DELIVERY_BYTES)
    except VideoLibraryError as exc:
        return refusal(exc)
    return app.resolve(admitted, context)
