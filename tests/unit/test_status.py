"""The status machine: forward only, terminal states final."""

from __future__ import annotations

import pytest

from video_library.status import VideoStatus, is_provider_cancellation


def test_predecessors_are_strictly_earlier() -> None:
    assert VideoStatus.PENDING.predecessors() == ()
    assert VideoStatus.PROCESSING.predecessors() == (VideoStatus.PENDING,)
    assert set(VideoStatus.COMPLETED.predecessors()) == {VideoStatus.PENDING, VideoStatus.PROCESSING}
    assert set(VideoStatus.FAILED.predecessors()) == {VideoStatus.PENDING, VideoStatus.PROCESSING}


def test_terminal_statuses() -> None:
    assert [s for s in VideoStatus if s.is_terminal] == [VideoStatus.COMPLETED, VideoStatus.FAILED]


def test_unknown_provider_status_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown task status"):
        VideoStatus.from_provider("exploded")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("running", VideoStatus.PROCESSING),
        ("Running", VideoStatus.PROCESSING),
        ("staged", VideoStatus.PENDING),
        ("cancelled", VideoStatus.FAILED),
        ("Canceled", VideoStatus.FAILED),
    ],
)
def test_piapi_synonyms_map_onto_the_four_statuses(raw: str, status: VideoStatus) -> None:
    assert VideoStatus.from_provider(raw) is status


def test_a_cancellation_is_told_apart_from_other_failures() -> None:
    assert is_provider_cancellation(" CANCELLED ")
    assert is_provider_cancellation("canceled")
    assert not is_provider_cancellation("failed")
