"""Deleting videos, the request: ``DELETE /api/video/{video_id}`` and ``POST /api/video/delete`` (many at once).

Who may delete what is decided here; how a deletion never loses track of an object is ``deletion``'s (objects
first, record last, under a lease; the usage counters move in the same transaction as the record). Answers:

- ``200 deleted``: the record and everything it had in R2 (the video, its thumbnail) are gone, counters updated;
- ``202 deleting``: the video is gone from every listing and can no longer be saved, but R2 refused to delete its
  objects just now: the sweep finishes the deletion (a repeated DELETE tries again at once);
- ``404 video_not_found``: not the caller's video, or no such video (a repeated DELETE after a 200 finds nothing);
- ``409 save_in_progress``: a save is queued or running; delete it once the save has finished (or failed);
- ``409 video_busy``: background work holds the video for a moment (the sweep removing a failed save's leftovers).

A preview (never saved, no save ever started) is one conditional delete; a saved video's objects go first.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictStr

from video_library import db, deletion
from video_library.deletion import DeletionOutcome
from video_library.errors import SaveInProgress, VideoBusy, VideoLibraryError, VideoNotFound
from video_library.observability import MetricUnit, logger, metrics

MAX_BULK = 100
_BULK_THREADS = 8

VideoId = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class DeleteOutcome(StrEnum):
    DELETED = "deleted"
    DELETING = "deleting"  # marked and hidden; R2 refused for now, the sweep finishes it


class DeleteAnswer(BaseModel):
    video_id: str
    outcome: DeleteOutcome

    @property
    def status(self) -> HTTPStatus:
        return HTTPStatus.OK if self.outcome is DeleteOutcome.DELETED else HTTPStatus.ACCEPTED


class BulkDeleteRequest(BaseModel):
    """Body of ``POST /api/video/delete``."""

    video_ids: list[VideoId] = Field(min_length=1, max_length=MAX_BULK)


class BulkDeleteItem(BaseModel):
    video_id: str
    status: int = Field(description="What a single DELETE of this video would have answered: 200, 202 or 4xx/5xx")
    outcome: DeleteOutcome | None = None
    error: dict[str, Any] | None = Field(default=None, description="The error body's `error`, when refused")


class BulkDeleteAnswer(BaseModel):
    results: list[BulkDeleteItem]
    deleted: int
    deleting: int = Field(description="Hidden and being deleted; the sweep finishes them")
    refused: int


def _not_found(video_id: str) -> VideoNotFound:
    return VideoNotFound("no such video in your library", video_id=video_id)


def _why_kept(video_id: str, user_id: str) -> DeleteAnswer:
    """The deletion's condition did not hold: say why, from the record as it is now."""
    current = db.get_video(video_id, consistent=True)
    if current is None:
        # Gone between our read and our delete (the purge, or another request of the owner's): what was asked.
        return DeleteAnswer(video_id=video_id, outcome=DeleteOutcome.DELETED)
    if current.user_id != user_id:
        raise _not_found(video_id)
    if current.deleting_at is not None:
        return DeleteAnswer(video_id=video_id, outcome=DeleteOutcome.DELETING)
    if current.save_status.in_progress:
        raise SaveInProgress(
            "a save of this video is queued or running; delete it once the save has finished", video_id=video_id
        )
    raise VideoBusy("this video is being worked on right now; try again in a minute", video_id=video_id)


def delete_video(user_id: str, video_id: str) -> DeleteAnswer:
    """Delete one of the caller's videos (and whatever it has in R2)."""
    answer = _delete(user_id, video_id)
    metrics.add_metric(name="VideosDeleted", unit=MetricUnit.Count, value=answer.outcome is DeleteOutcome.DELETED)
    return answer


def _delete(user_id: str, video_id: str) -> DeleteAnswer:
    record = db.get_video(video_id, consistent=True)
    if record is None or record.user_id != user_id:
        raise _not_found(video_id)
    if record.deleting_at is None and record.save_status.in_progress:
        raise SaveInProgress(
            "a save of this video is queued or running; delete it once the save has finished", video_id=video_id
        )
    outcome = deletion.delete_video(video_id, db.utcnow(), db.VideoRecord.user_id == user_id)
    if outcome is DeletionOutcome.KEPT:
        answer = _why_kept(video_id, user_id)
    elif outcome is DeletionOutcome.UNFINISHED:
        answer = DeleteAnswer(video_id=video_id, outcome=DeleteOutcome.DELETING)
    else:
        answer = DeleteAnswer(video_id=video_id, outcome=DeleteOutcome.DELETED)
    logger.info("video deletion", extra={"video_id": video_id, "outcome": answer.outcome.value})
    return answer


def delete_videos(user_id: str, request: BulkDeleteRequest) -> BulkDeleteAnswer:
    """Delete many of the caller's videos: each is decided as a single DELETE would be, one answer for all."""
    ids = list(dict.fromkeys(request.video_ids))

    def decide(video_id: str) -> BulkDeleteItem:
        try:
            answer = _delete(user_id, video_id)
        except VideoLibraryError as exc:
            return BulkDeleteItem(video_id=video_id, status=int(exc.status), error=exc.to_body()["error"])
        return BulkDeleteItem(video_id=video_id, status=int(answer.status), outcome=answer.outcome)

    with ThreadPoolExecutor(max_workers=_BULK_THREADS, thread_name_prefix="bulk-delete") as pool:
        results = list(pool.map(decide, ids))
    answer = BulkDeleteAnswer(
        results=results,
        deleted=sum(1 for r in results if r.outcome is DeleteOutcome.DELETED),
        deleting=sum(1 for r in results if r.outcome is DeleteOutcome.DELETING),
        refused=sum(1 for r in results if r.status >= HTTPStatus.BAD_REQUEST),
    )
    metrics.add_metric(name="VideosDeleted", unit=MetricUnit.Count, value=answer.deleted)
    return answer
