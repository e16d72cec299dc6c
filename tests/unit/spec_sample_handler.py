"""A route as another engineer would add it, for the spec generator's test: nothing but its own declaration."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.errors import SaveInProgress, VideoNotFound
from video_library.http import register_error_handlers, resolve_for_signed_in_user, route_answers

app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)


@app.delete(
    "/api/video/<video_id>/thumbnail",
    summary="Delete one of the caller's video's thumbnail",
    tags=["library"],
    responses=route_answers({200: "Deleted"}, VideoNotFound, SaveInProgress),
)
def delete_thumbnail(video_id: Annotated[str, Path(min_length=1, max_length=128)]) -> dict[str, str]:
    raise VideoNotFound("no such video in your library", video_id=video_id)


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_signed_in_user(app, event, context)
