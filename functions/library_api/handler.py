"""The library API the front end needs: list (filtered, sorted, searched), campaigns, one video, delete,
check previews, generate, storage usage.

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

from video_library.db import Throttled
from video_library.delete_request import BulkDeleteAnswer, BulkDeleteRequest, DeleteAnswer, delete_video, delete_videos
from video_library.errors import (
    BadRequest,
    ProviderError,
    QuotaExceeded,
    SaveInProgress,
    ServiceNotConfigured,
    VideoBusy,
    VideoNotFound,
)
from video_library.expiry import PreviewCheckAnswer, PreviewCheckRequest, check_previews
from video_library.generate import GenerateRequest, generate_video
from video_library.http import caller_id, register_error_handlers, resolve_for_signed_in_user, route_answers
from video_library.library import (
    CampaignPage,
    StorageUsage,
    VideoPage,
    VideoView,
    get_video,
    list_campaigns,
    list_videos,
    storage_usage,
    view_of,
)
from video_library.listing import Show, Sort
from video_library.models import CAMPAIGN_ID_PATTERN
from video_library.observability import logger, metrics, tracer
from video_library.snapstart import register_hooks
from video_library.status import VideoStatus

# With SnapStart (apiSnapStart), environments restored from one snapshot are made distinct again.
register_hooks()
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)

CampaignQuery = Annotated[str | None, Query(pattern=CAMPAIGN_ID_PATTERN, description="Only this campaign")]
CursorQuery = Annotated[str | None, Query(max_length=2048, description="next_cursor of the previous page")]
VideoIdPath = Annotated[str, Path(min_length=1, max_length=128)]


def _caller() -> str:
    return caller_id(app.current_event.raw_event)


def _json(status: HTTPStatus, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


# ServiceNotConfigured: a saved video's URL is presigned, which needs R2's settings.
@app.get(
    "/api/video/library",
    summary="The caller's videos: filtered, sorted, searched, with counts",
    tags=["library"],
    responses=route_answers({200: "One page of videos"}, BadRequest, ServiceNotConfigured),
)
def library(
    campaign_id: CampaignQuery = None,
    show: Annotated[
        Show,
        Query(
            description="all; saved; unsaved; failed (the generation or the last save failed); expiring (previews "
            "that can still be saved and expire within 3 days, or are past their estimated expiry)"
        ),
    ] = Show.ALL,
    sort: Annotated[Sort, Query(description="newest, oldest, or largest (saved videos only)")] = Sort.NEWEST,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Only videos whose prompt contains this (any case)")
    ] = None,
    status: Annotated[VideoStatus | None, Query(description="Only videos in this status")] = None,
    saved: Annotated[bool | None, Query(description="Only saved (true) or unsaved (false) videos")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    cursor: CursorQuery = None,
) -> VideoPage:
    return list_videos(
        _caller(),
        campaign_id=campaign_id,
        status=status,
        saved=saved,
        show=show,
        sort=sort,
        search=q,
        limit=limit,
        cursor=cursor,
    )


@app.get(
    "/api/video/campaigns",
    summary="The campaigns the caller has made videos in, with their saved counts",
    tags=["library"],
    responses=route_answers({200: "One page of campaigns"}, BadRequest),
)
def campaigns(limit: Annotated[int, Query(ge=1, le=100)] = 100, cursor: CursorQuery = None) -> CampaignPage:
    return list_campaigns(_caller(), limit=limit, cursor=cursor)


@app.get(
    "/api/video/storage-usage",
    summary="Saved videos, their size and estimated monthly R2 cost (one read)",
    tags=["library"],
    responses=route_answers({200: "What the caller's saved videos take in R2"}),
)
def usage(campaign_id: CampaignQuery = None) -> StorageUsage:
    return storage_usage(_caller(), campaign_id)


@app.post(
    "/api/video/delete",
    summary="Delete many of the caller's videos (up to 100); one answer with each video's outcome",
    tags=["library"],
    responses=route_answers({200: "Each video's outcome"}),
)
def bulk_delete(body: BulkDeleteRequest) -> BulkDeleteAnswer:
    return delete_videos(_caller(), body)


@app.post(
    "/api/video/check-previews",
    summary="Ask the provider whether previews still have their file (up to 50); those gone are marked expired",
    tags=["library"],
    responses=route_answers({200: "Each preview's state"}),
)
def previews(body: PreviewCheckRequest) -> PreviewCheckAnswer:
    return check_previews(_caller(), body)


@app.get(
    "/api/video/<video_id>",
    summary="One of the caller's videos",
    tags=["library"],
    responses=route_answers({200: "The video"}, VideoNotFound, ServiceNotConfigured),
)
def one_video(video_id: VideoIdPath) -> VideoView:
    return get_video(_caller(), video_id)


@app.delete(
    "/api/video/<video_id>",
    summary="Delete one of the caller's videos: a saved video's objects in R2, then its record",
    tags=["library"],
    responses=route_answers(
        {
            200: {"description": "Deleted", "content": {"application/json": {"model": DeleteAnswer}}},
            202: {
                "description": "Hidden and being deleted: R2 refused for now, the sweep finishes it",
                "content": {"application/json": {"model": DeleteAnswer}},
            },
        },
        VideoNotFound,
        SaveInProgress,
        VideoBusy,
        Throttled,
    ),
)
def delete_one(video_id: VideoIdPath) -> Response[DeleteAnswer]:
    answer = delete_video(_caller(), video_id)
    return _json(answer.status, answer)


@app.post(
    "/api/video/generate",
    summary="Generate a video through PiAPI (answers 202 with the pending video)",
    tags=["generate"],
    responses=route_answers(
        {202: {"description": "Accepted: the video is pending", "content": {"application/json": {"model": VideoView}}}},
        ProviderError,
        QuotaExceeded,
        ServiceNotConfigured,  # PIAPI_API_KEY unset
    ),
)
def generate(body: GenerateRequest) -> Response[VideoView]:
    return _json(HTTPStatus.ACCEPTED, view_of(generate_video(_caller(), body)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_for_signed_in_user(app, event, context)
