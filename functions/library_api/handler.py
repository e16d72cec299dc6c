"""The library API the front end needs: list, one video, generate, storage usage.

The caller is checked before the resolver runs (Powertools validates first), so an unauthenticated request
gets 401 whatever it sends.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from video_library.errors import BadRequest, ProviderError, ServiceNotConfigured, VideoNotFound
from video_library.generate import GenerateRequest, generate_video
from video_library.http import caller_id, register_error_handlers, resolve_for_signed_in_user, route_answers
from video_library.library import StorageUsage, VideoPage, VideoView, get_video, list_videos, storage_usage, view_of
from video_library.models import CAMPAIGN_ID_PATTERN
from video_library.observability import logger, metrics, tracer
from video_library.snapstart import register_hooks
from video_library.status import VideoStatus

# With SnapStart (apiSnapStart), environments restored from one snapshot are made distinct again.
register_hooks()
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)

CampaignQuery = Annotated[str | None, Query(pattern=CAMPAIGN_ID_PATTERN, description="Only this campaign")]


def _caller() -> str:
    return caller_id(app.current_event.raw_event)


# ServiceNotConfigured: a saved video's URL is presigned, which needs R2's settings.
@app.get(
    "/api/video/library",
    summary="The caller's videos, newest first",
    tags=["library"],
    responses=route_answers({200: "One page of videos"}, BadRequest, ServiceNotConfigured),
)
def library(
    campaign_id: CampaignQuery = None,
    status: Annotated[VideoStatus | None, Query(description="Only videos in this status")] = None,
    saved: Annotated[bool | None, Query(description="Only saved (true) or unsaved (false) videos")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    cursor: Annotated[str | None, Query(max_length=2048, description="next_cursor of the previous page")] = None,
) -> VideoPage:
    return list_videos(_caller(), campaign_id=campaign_id, status=status, saved=saved, limit=limit, cursor=cursor)


@app.get(
    "/api/video/storage-usage",
    summary="Saved videos, their size and estimated monthly R2 cost",
    tags=["library"],
    responses=route_answers({200: "What the caller's saved videos take in R2"}),
)
def usage(campaign_id: CampaignQuery = None) -> StorageUsage:
    return storage_usage(_caller(), campaign_id)


@app.get(
    "/api/video/<video_id>",
    summary="One of the caller's videos",
    tags=["library"],
    responses=route_answers({200: "The video"}, VideoNotFound, ServiceNotConfigured),
)
def one_video(video_id: Annotated[str, Path(min_length=1, max_length=128)]) -> VideoView:
    return get_video(_caller(), video_id)


@app.post(
    "/api/video/generate",
    summary="Generate a video through PiAPI (answers 202 with the pending video)",
    tags=["generate"],
    responses=route_answers(
        {202: {"description": "Accepted: the video is pending", "content": {"application/json": {"model": VideoView}}}},
        ProviderError,
        ServiceNotConfigured,  # PIAPI_API_KEY unset
    ),
)
def generate(body: GenerateRequest) -> Response[VideoView]:
    view = view_of(generate_video(_caller(), body))
    return Response(status_code=HTTPStatus.ACCEPTED, content_type=content_types.APPLICATION_JSON, body=view)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_signed_in_user(app, event, context)
