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
            raise ValueError(f"unknown task status {raw[:64]!r}") from None


def is_provider_cancellation(raw: str) -> bool:
    """Whether PiAPI's status says the task was cancelled (a failure whose reason is the status itself)."""
    return raw.strip().lower() in _CANCELLED


_RANK = {
    VideoStatus.PENDING: 0,
    VideoStatus.PROCESSING: 1,
    VideoStatus.COMPLETED: 2,
    VideoStatus.FAILED: 2,
}

# PiAPI documents Pending/Processing/Completed/Failed (and "Staged" for tasks queued behind a quota). It also
# has cancel-task endpoints, and its own CLI knows "cancelled" and "running": a cancelled task never completes,
# so it is a terminal failure; a running one is processing.
_CANCELLED = frozenset({"cancelled", "canceled"})
_PROVIDER_STATUSES = {
    "pending": VideoStatus.PENDING,
    "staged": VideoStatus.PENDING,
    "processing": VideoStatus.PROCESSING,
    "running": VideoStatus.PROCESSING,
    "completed": VideoStatus.COMPLETED,
    "failed": VideoStatus.FAILED,
    **dict.fromkeys(_CANCELLED, VideoStatus.FAILED),
}
