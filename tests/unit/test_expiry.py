"""expiry: when a preview goes away (the earlier of the provider's estimated retention and the purge), and the
window of record times an "expiring soon" listing reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from video_library import db
from video_library.expiry import EXPIRING_SOON, PURGE_SLACK, expiring_window, preview_expires_at
from video_library.settings import Settings
from video_library.status import VideoStatus

CREATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(provider_retention_days=7, purge_after_days=30)


def record(status: VideoStatus, *, completed: datetime | None = None, saved: bool = False) -> db.VideoRecord:
    return db.VideoRecord(
        "v1",
        user_id="alice",
        campaign_id="42",
        status=status.value,
        created_at=CREATED,
        completed_at=completed,
        saved_to_r2=saved,
    )


def test_a_completed_preview_expires_with_the_providers_retention_after_completion() -> None:
    completed = CREATED + timedelta(minutes=3)

    assert preview_expires_at(record(VideoStatus.COMPLETED, completed=completed), SETTINGS) == completed + timedelta(
        days=7
    )


def test_the_purge_comes_first_when_the_provider_keeps_files_longer() -> None:
    settings = Settings(provider_retention_days=60, purge_after_days=30)

    expires = preview_expires_at(record(VideoStatus.COMPLETED, completed=CREATED), settings)

    assert expires == CREATED + timedelta(days=30)


@pytest.mark.parametrize("status", [VideoStatus.PENDING, VideoStatus.PROCESSING, VideoStatus.FAILED])
def test_a_video_with_no_file_yet_or_ever_expires_with_the_purge(status: VideoStatus) -> None:
    assert preview_expires_at(record(status), SETTINGS) == CREATED + timedelta(days=30)


def test_a_saved_video_never_expires() -> None:
    assert preview_expires_at(record(VideoStatus.COMPLETED, completed=CREATED, saved=True), SETTINGS) is None


def test_a_completed_record_without_its_completion_time_counts_from_its_creation() -> None:
    assert preview_expires_at(record(VideoStatus.COMPLETED), SETTINGS) == CREATED + timedelta(days=7)


def test_the_expiring_window_holds_every_record_that_can_expire_soon_and_no_younger_one() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)

    window = expiring_window(now, SETTINGS)

    horizon = now + EXPIRING_SOON
    assert window.completed_by == horizon - timedelta(days=7)
    assert window.created_by == horizon - timedelta(days=30)
    # the youngest record that can expire by the horizon was completed at its creation: created_to is exactly it
    assert window.created_to == window.completed_by
    assert window.created_from == now - timedelta(days=30) - PURGE_SLACK
    # a preview created just inside the window and completed at once expires within EXPIRING_SOON
    youngest = record(VideoStatus.COMPLETED, completed=window.created_to)
    youngest.created_at = window.created_to
    expires = preview_expires_at(youngest, SETTINGS)
    assert expires is not None and expires <= horizon
