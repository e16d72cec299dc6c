"""The life of a video record: pending → processing → completed | failed, never backwards."""

from __future__ import annotations

from enum import StrEnum


class VideoStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self in (VideoStatus.COMPLETED, VideoStatus.FAILED)

    def predecessors(self) -> tuple[VideoStatus, ...]:
        """The statuses a record may move to this one from: strictly earlier in its life."""
        return tuple(status for status in VideoStatus if status.rank < self.rank)

    @classmethod
    def from_provider(cls, raw: str) -> VideoStatus:
        """PiAPI's status in any case (``completed``, ``Completed``) and its synonyms; ValueError if unknown."""
        try:
            return _PROVIDER_STATUSES[raw.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown task status {raw!r}") from None


_RANK = {
    VideoStatus.PENDING: 0,
    VideoStatus.PROCESSING: 1,
    VideoStatus.COMPLETED: 2,
    VideoStatus.FAILED: 2,
}

# PiAPI documents Pending/Processing/Completed/Failed (and "Staged" for tasks queued behind a quota).
_PROVIDER_STATUSES = {
    "pending": VideoStatus.PENDING,
    "staged": VideoStatus.PENDING,
    "processing": VideoStatus.PROCESSING,
    "completed": VideoStatus.COMPLETED,
    "failed": VideoStatus.FAILED,
}
