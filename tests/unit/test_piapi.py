"""PiAPI payload parsing: every output layout yields the right URLs, thumbnail and cost."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import load_event, task_of
from video_library.piapi import Task, TaskOutput, WebhookBody, ended_at, locate_video, points_consumed, provider_of
from video_library.status import VideoStatus

EXPECTED = {
    "webhook_hunyuan_completed": (
        "https://img.theapi.app/ephemeral/0b6f2a1c-8d3e-4f5a-9b7c-2d1e0f3a4b5c.mp4",
        "https://img.theapi.app/ephemeral/0b6f2a1c-8d3e-4f5a-9b7c-2d1e0f3a4b5c.mp4",
        None,
    ),
    "webhook_kling_works_completed": (
        "https://v15-kling.klingai.com/bs2/upload/fox-watermarked.mp4",
        "https://storage.theapi.app/videos/318812345678901.mp4",
        "https://s15-kling.klingai.com/kimg/cover-4f2e.jpg",
    ),
    "webhook_kling3_completed": (
        "https://storage.theapi.app/videos/302399988877766.mp4",
        "https://storage.theapi.app/videos/302399988877766.mp4",
        None,
    ),
    "webhook_luma_completed": (
        "https://storage.cdn-luma.com/dream_machine/a1b2/waves_watermarked.mp4",
        "https://storage.cdn-luma.com/dream_machine/a1b2/waves.mp4",
        "https://imagedelivery.net/abc123/waves-thumb/public",
    ),
}


@pytest.mark.parametrize(("event_name", "expected"), EXPECTED.items())
def test_locates_video_raw_and_thumbnail_in_every_layout(event_name: str, expected: tuple[str, ...]) -> None:
    task = Task.model_validate(task_of(load_event(event_name)))

    location = locate_video(task.output)

    assert (location.video_url, location.video_raw_url, location.thumbnail_url) == expected


def test_hailuo_cover_url_is_the_thumbnail() -> None:
    output = TaskOutput.model_validate(
        {"video_url": "https://img.theapi.app/hailuo/v.mp4", "cover_url": "https://img.theapi.app/hailuo/c.jpg"}
    )

    location = locate_video(output)

    assert location.video_url == location.video_raw_url == "https://img.theapi.app/hailuo/v.mp4"
    assert location.thumbnail_url == "https://img.theapi.app/hailuo/c.jpg"


def test_kling_work_without_clean_video_falls_back_to_the_watermarked_one() -> None:
    output = TaskOutput.model_validate(
        {"works": [{"video": {"resource": "https://v.klingai.com/a.mp4", "resource_without_watermark": ""}}]}
    )

    location = locate_video(output)

    assert location.video_raw_url == location.video_url == "https://v.klingai.com/a.mp4"


@pytest.mark.parametrize("empty", [{}, [], None])
def test_empty_output_has_no_video(empty: object) -> None:
    task = Task.model_validate({"task_id": "t", "status": "processing", "output": empty})

    assert locate_video(task.output).video_url is None


def test_unknown_fields_are_tolerated_and_kept() -> None:
    task = Task.model_validate(
        {
            "task_id": "t",
            "status": "Completed",
            "brand_new": {"x": 1},
            "output": {"video": "https://a.theapi.app/v.mp4", "extra": True},
        }
    )

    assert task.video_status is VideoStatus.COMPLETED
    assert task.model_extra == {"brand_new": {"x": 1}}
    assert locate_video(task.output).video_url == "https://a.theapi.app/v.mp4"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("completed", VideoStatus.COMPLETED),
        ("Completed", VideoStatus.COMPLETED),
        ("FAILED", VideoStatus.FAILED),
        ("Processing", VideoStatus.PROCESSING),
        ("pending", VideoStatus.PENDING),
        ("Staged", VideoStatus.PENDING),
    ],
)
def test_statuses_are_read_in_any_case(raw: str, status: VideoStatus) -> None:
    assert Task.model_validate({"task_id": "t", "status": raw}).video_status is status


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data": {}},
        {"data": {"task_id": "t"}},
        {"data": {"task_id": "", "status": "completed"}},
        {"data": {"task_id": "t", "status": "exploded"}},
        {"data": "not an object"},
    ],
)
def test_bodies_that_are_not_a_task_are_refused(body: object) -> None:
    with pytest.raises(ValidationError):
        WebhookBody.model_validate(body)


def test_cost_and_end_time_come_from_meta() -> None:
    task = Task.model_validate(task_of(load_event("webhook_kling_works_completed")))

    assert points_consumed(task) == 2_600_000
    assert ended_at(task) is not None
    assert ended_at(task).isoformat() == "2026-11-25T10:06:12+00:00"  # type: ignore[union-attr]


def test_year_one_end_time_means_not_ended() -> None:
    task = Task.model_validate(task_of(load_event("webhook_processing")))

    assert ended_at(task) is None


@pytest.mark.parametrize(
    ("model", "provider"),
    [("Qubico/hunyuan", "hunyuan"), ("kling", "kling"), ("luma", "luma"), (None, None), ("", None)],
)
def test_provider_is_the_model_family(model: str | None, provider: str | None) -> None:
    assert provider_of(model) == provider
