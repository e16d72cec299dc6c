"""Save to Library, the request: check, queue, answer at once.

API Gateway ends every request at 30 s and a Lambda of 256 MB copies at tens of MiB/s, so no transfer runs
inside a request. ``POST /api/video/save-to-library`` checks what it can by itself — the caller owns the video,
the video is completed, its source URL is one the policy allows by its scheme, host and port — then marks the
record ``queued`` (one conditional write, so repeated or concurrent requests queue it once) and sends the save
queue a message. The worker (``transfer``) makes the copy; the record carries its progress.

Answers: 200 with the video when it is already saved; 202 with the video (``save_state`` queued or saving) when
a save is queued or running; 4xx when the request is refused, with nothing changed. Many videos at once —
``{"video_ids": [...]}`` (up to 100) or ``{"campaign_id": "42", "all_ready": true}`` — get one answer with
each video's outcome.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, model_validator

from video_library import db, save_queue
from video_library.errors import (
    PreviewExpired,
    SaveInProgress,
    SaveQueueUnavailable,
    SourceGone,
    SourceNotAllowed,
    VideoLibraryError,
    VideoNotFound,
    WrongState,
)
from video_library.library import SaveStatus, save_status_of
from video_library.models import CAMPAIGN_ID_PATTERN
from video_library.observability import MetricUnit, logger, metrics
from video_library.save_queue import SaveMessage
from video_library.save_state import STALLED_AFTER, SaveState
from video_library.settings import get_settings
from video_library.source import SourcePolicy

MAX_BULK = 100
_BULK_THREADS = 8


def _campaign_id_as_text(value: object) -> object:
    # Front ends send campaign ids as numbers or strings; booleans and floats are mistakes, not ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is not None and not isinstance(value, str):
        raise ValueError("campaign_id must be a string or an integer")
    return value


VideoId = Annotated[StrictStr, Field(min_length=1, max_length=128)]
_ALL_READY: dict[str, Any] = {"properties": {"all_ready": {"const": True}}, "required": ["all_ready"]}


class SaveRequest(BaseModel):
    """Body of ``POST /api/video/save-to-library``: one video, a list of videos, or every ready video of a
    campaign."""

    # What _one_way enforces, stated in the JSON schema (and so in the OpenAPI spec): exactly one of the three.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["video_id"], "not": {"anyOf": [{"required": ["video_ids"]}, _ALL_READY]}},
                {"required": ["video_ids"], "not": {"anyOf": [{"required": ["video_id"]}, _ALL_READY]}},
                {
                    "properties": {"all_ready": {"const": True}, "campaign_id": {"type": "string"}},
                    "required": ["all_ready", "campaign_id"],
                    "not": {"anyOf": [{"required": ["video_id"]}, {"required": ["video_ids"]}]},
                },
            ]
        }
    )

    video_id: VideoId | None = None
    video_ids: list[VideoId] | None = Field(default=None, min_length=1, max_length=MAX_BULK)
    campaign_id: Annotated[str | None, BeforeValidator(_campaign_id_as_text)] = Field(
        default=None,
        pattern=CAMPAIGN_ID_PATTERN,
        description="With video_id/video_ids: must be the videos' campaign. With all_ready: the campaign to save. "
        "A number is accepted and read as its digits.",
    )
    all_ready: StrictBool = Field(
        default=False, description="Save every completed, unsaved video of campaign_id (up to 100 per request)"
    )

    @model_validator(mode="after")
    def _one_way(self) -> SaveRequest:
        ways = sum((self.video_id is not None, self.video_ids is not None, self.all_ready))
        if ways != 1:
            raise ValueError("give exactly one of video_id, video_ids, or all_ready with campaign_id")
        if self.all_ready and self.campaign_id is None:
            raise ValueError("all_ready needs campaign_id")
        return self

    @property
    def is_bulk(self) -> bool:
        return self.video_id is None


class BulkSaveItem(BaseModel):
    video_id: str
    status: int = Field(description="What a single save of this video would have answered: 200, 202 or 4xx/5xx")
    save_state: SaveState | None = None
    error: dict[str, Any] | None = Field(default=None, description="The error body's `error`, when refused")


class BulkSaveAnswer(BaseModel):
    results: list[BulkSaveItem]
    queued: int = Field(description="Saves queued by this request")
    in_progress: int = Field(description="Saves that were already queued or running")
    already_saved: int
    refused: int
    more: bool = Field(description="all_ready only: more ready videos remain; send the request again")


class SaveAnswer(BaseModel):
    """What a single save answers: its HTTP status (200 or 202) and where the save stands. (No URLs: the save
    route holds no R2 keys to presign them; the library API's views carry them.)"""

    status: int
    save: SaveStatus


def _owned(video_id: str, user_id: str, campaign_id: str | None) -> db.VideoRecord:
    record = db.get_video(video_id, consistent=True)
    if (
        record is None
        or record.user_id != user_id
        or record.deleting_at is not None
        or (campaign_id is not None and record.campaign_id != campaign_id)
    ):
        raise VideoNotFound("no such video in your library", video_id=video_id)
    return record


def _check_source(record: db.VideoRecord) -> None:
    """Refuse at once a URL the policy rejects by itself; the address check happens where the worker connects."""
    source_url = record.provider_video_raw_url or record.provider_video_url
    if not source_url:
        raise SourceGone("the provider gave no URL for this video", video_id=record.video_id)
    try:
        SourcePolicy.from_settings(get_settings()).check_source_url(source_url)
    except SourceNotAllowed as exc:
        raise SourceNotAllowed(exc.message, video_id=record.video_id, **exc.details) from None


def _expired(record: db.VideoRecord) -> PreviewExpired:
    expired_at = record.preview_expired_at.isoformat() if record.preview_expired_at else None
    return PreviewExpired(
        "the provider no longer has this video's file: the preview has expired and can no longer be saved",
        video_id=record.video_id,
        preview_expired_at=expired_at,
    )


def _stalled(record: db.VideoRecord, now: datetime) -> bool:
    return record.save_stalled(now, STALLED_AFTER)


class _Queued:
    """One video on its way into the queue: the record marked queued, the message still to send."""

    def __init__(self, record: db.VideoRecord, requested_at: datetime) -> None:
        self.record = record
        self.requested_at = requested_at


def _mark(record: db.VideoRecord, user_id: str) -> tuple[HTTPStatus, _Queued | None, SaveState]:
    """Decide one video and, if a save must start, mark it queued. Raises the refusal (4xx) otherwise."""
    status, queued = _decide(record, user_id)
    state = record.save_status if queued is None and record.save_status.in_progress else SaveState.QUEUED
    return status, queued, SaveState.SAVED if status is HTTPStatus.OK else state


def _decide(record: db.VideoRecord, user_id: str) -> tuple[HTTPStatus, _Queued | None]:
    if record.save_status is SaveState.SAVED:
        return HTTPStatus.OK, None
    if record.video_status.value != "completed":
        raise WrongState(
            f"only completed videos can be saved; this one is {record.status}",
            video_id=record.video_id,
            status=record.status,
        )
    if record.preview_expired_at is not None:
        raise _expired(record)
    _check_source(record)
    now = db.utcnow()
    if record.save_status.in_progress:
        if _stalled(record, now) and db.requeue_stalled_save(record.video_id, now - STALLED_AFTER, now):
            return HTTPStatus.ACCEPTED, _Queued(record, now)
        return HTTPStatus.ACCEPTED, None
    if db.queue_save(record.video_id, user_id, now):
        return HTTPStatus.ACCEPTED, _Queued(record, now)
    current = db.get_video(record.video_id, consistent=True)  # what beat us to it?
    if current is None or current.deleting_at is not None or current.user_id != user_id:
        raise VideoNotFound("no such video in your library", video_id=record.video_id)
    if current.save_status is SaveState.SAVED:
        return HTTPStatus.OK, None
    if current.save_status.in_progress:
        return HTTPStatus.ACCEPTED, None
    if current.preview_expired_at is not None:
        raise _expired(current)
    raise SaveInProgress("this video is changing right now; try again in a moment", video_id=record.video_id)


def _send(queued: list[_Queued]) -> set[str]:
    """Send the messages; undo the marks whose message SQS refused. Returns the ids that could not be queued."""
    if not queued:
        return set()
    refused = set(
        save_queue.send([SaveMessage(video_id=q.record.video_id, requested_at=q.requested_at) for q in queued])
    )
    not_queued = set()
    for item in queued:
        if item.record.video_id not in refused:
            continue
        undone = db.unqueue_save(
            item.record.video_id,
            item.requested_at,
            SaveQueueUnavailable.code,
            "the save could not be queued; please try again",
            db.utcnow(),
        )
        if undone:
            not_queued.add(item.record.video_id)
        # Otherwise a worker already took it (the message did go through, only its answer was lost): queued.
    if refused:
        logger.error("the save queue refused messages", extra={"video_ids": sorted(refused)})
    metrics.add_metric(name="SavesQueued", unit=MetricUnit.Count, value=len(queued) - len(not_queued))
    return not_queued


def request_save(user_id: str, video_id: str, campaign_id: str | None) -> SaveAnswer:
    """Save one video: 200 when it is saved already, 202 once its save is queued or running."""
    record = _owned(video_id, user_id, campaign_id)
    status, queued, _ = _mark(record, user_id)
    if queued is not None and _send([queued]):
        raise SaveQueueUnavailable("the save could not be queued; nothing was changed, please try again")
    current = db.get_video(video_id, consistent=True) or record
    return SaveAnswer(status=status, save=save_status_of(current))


def request_saves(user_id: str, request: SaveRequest) -> BulkSaveAnswer:
    """Save many videos: each is decided as a single save would be, the messages go in batches."""
    more = False
    if request.all_ready:
        assert request.campaign_id is not None  # the model's validator
        records, more = db.ready_to_save(user_id, request.campaign_id, limit=MAX_BULK)
        ids = [record.video_id for record in records]
    else:
        ids = list(dict.fromkeys(request.video_ids or []))

    def decide(video_id: str) -> tuple[str, HTTPStatus | VideoLibraryError, _Queued | None, SaveState | None]:
        try:
            status, queued, state = _mark(_owned(video_id, user_id, request.campaign_id), user_id)
        except VideoLibraryError as exc:
            return video_id, exc, None, None
        return video_id, status, queued, state

    with ThreadPoolExecutor(max_workers=_BULK_THREADS, thread_name_prefix="bulk-save") as pool:
        decisions = list(pool.map(decide, ids))
    not_queued = _send([queued for _, _, queued, _ in decisions if queued is not None])
    results: list[BulkSaveItem] = []
    for video_id, decision, _, state in decisions:
        if video_id in not_queued:
            decision = SaveQueueUnavailable("the save could not be queued; please try again")
        if isinstance(decision, VideoLibraryError):
            error = decision.to_body()["error"]
            results.append(BulkSaveItem(video_id=video_id, status=int(decision.status), error=error))
        else:
            results.append(BulkSaveItem(video_id=video_id, status=int(decision), save_state=state))
    queued_now = sum(1 for _, _, queued, _ in decisions if queued is not None) - len(not_queued)
    return BulkSaveAnswer(
        results=results,
        queued=queued_now,
        in_progress=sum(1 for r in results if r.status == HTTPStatus.ACCEPTED) - queued_now,
        already_saved=sum(1 for r in results if r.status == HTTPStatus.OK),
        refused=sum(1 for r in results if r.status >= 400),
        more=more,
    )
