"""PiAPI payload parsing: every output layout yields the right URLs, thumbnail and cost."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import load_event, task_of
from video_library.piapi import (
    MAX_PROVIDER_TEXT_CHARS,
    MAX_URL_CHARS,
    Task,
    TaskError,
    TaskOutput,
    UrlPolicy,
    WebhookBody,
    bounded_text,
    ended_at,
    locate_video,
    points_consumed,
    provider_of,
)
from video_library.settings import Settings
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
        ("running", VideoStatus.PROCESSING),
        ("Cancelled", VideoStatus.FAILED),
        ("canceled", VideoStatus.FAILED),
    ],
)
def test_statuses_are_read_in_any_case(raw: str, status: VideoStatus) -> None:
    assert Task.model_validate({"task_id": "t", "status": raw}).video_status is status


@pytest.mark.parametrize("raw", ["exploded", "archived", "x" * 10_000])
def test_an_unknown_status_is_a_task_whose_status_we_do_not_know(raw: str) -> None:
    task = Task.model_validate({"task_id": "t", "status": raw})

    assert task.video_status is None
    assert not task.was_cancelled


def test_only_cancellations_count_as_cancelled() -> None:
    def cancelled(status: str) -> bool:
        return Task.model_validate({"task_id": "t", "status": status}).was_cancelled

    assert cancelled("cancelled") and cancelled(" CANCELED ")
    assert not cancelled("failed") and not cancelled("completed")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data": {}},
        {"data": {"task_id": "t"}},
        {"data": {"task_id": "", "status": "completed"}},
        {"data": {"task_id": "t" * 257, "status": "completed"}},
        {"data": {"task_id": "t", "status": ""}},
        {"data": {"task_id": "t", "status": 3}},
        {"data": "not an object"},
    ],
)
def test_bodies_that_are_not_a_task_are_refused(body: object) -> None:
    with pytest.raises(ValidationError):
        WebhookBody.model_validate(body)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://img.theapi.app/v.mp4", None),
        ("HTTPS://IMG.THEAPI.APP/v.mp4?sig=a%20b#t=1", None),
        ("https://[2001:db8::1]:8443/v.mp4", None),
        ("https://xn--bcher-kva.example/v.mp4", None),
        ("https://img.theapi.app/" + "a" * (MAX_URL_CHARS - 23), None),
        ("https://img.theapi.app/" + "a" * (MAX_URL_CHARS - 22), f"it is longer than {MAX_URL_CHARS} characters"),
        ("javascript:alert(document.cookie)", "it is not an https URL"),
        ("JavaScript://img.theapi.app/%0aalert(1)", "it is not an https URL"),
        ("data:video/mp4;base64,AAAA", "it is not an https URL"),
        ("file:///etc/passwd", "it is not an https URL"),
        ("ftp://img.theapi.app/v.mp4", "it is not an https URL"),
        ("//img.theapi.app/v.mp4", "it is not an https URL"),
        ("/relative/v.mp4", "it is not an https URL"),
        ("https:///v.mp4", "it has no host"),
        ("https:v.mp4", "it has no host"),
        ("https://user:pass@img.theapi.app/v.mp4", "it carries credentials"),
        ("https://token@img.theapi.app/v.mp4", "it carries credentials"),
        ("http://img.theapi.app/v.mp4", "it is plain http"),
        ("https://img.theapi.app:99999/v.mp4", "it has an invalid port"),
        ("https://img.theapi.app:-1/v.mp4", "it has an invalid port"),
        ("https://[::1/v.mp4", "it is not a valid URL"),
        ("https://exa mple.com/v.mp4", "it holds characters a URL cannot"),
        ("https://img.theapi.app/a\tb.mp4", "it holds characters a URL cannot"),
        ("https://img.theapi.app/v.mp4\n", "it holds characters a URL cannot"),
        ("https://\uff11\uff12\uff17.0.0.1/v.mp4", "it holds characters a URL cannot"),
        ("https://img.theapi.app:\uff18\uff10/v.mp4", "it holds characters a URL cannot"),
        ("https://\uff49\uff4d\uff47.theapi.app/v.mp4", "it holds characters a URL cannot"),
        ("", "it is not a URL"),
        (42, "it is not a URL"),
    ],
)
def test_url_policy_keeps_only_absolute_https_urls(url: object, problem: str | None) -> None:
    assert UrlPolicy().problem_with(url) == problem


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        ("localhost:8002", "http://localhost:8002/v.mp4", True),
        ("localhost:8002", "http://LOCALHOST:8002/v.mp4", True),
        ("localhost:8002", "http://localhost:8003/v.mp4", False),
        ("localhost:8002", "http://localhost/v.mp4", False),
        ("localhost:80", "http://localhost/v.mp4", True),
        ("127.0.0.1:8002", "http://127.0.0.1:8002/v.mp4", True),
        ("127.0.0.1:8002", "http://127.0.0.2:8002/v.mp4", False),
        ("[::1]:8002", "http://[::1]:8002/v.mp4", True),
        ("[::1]:8002", "http://[::1]:9/v.mp4", False),
        ("localhost:8002", "http://localhost.evil.example:8002/v.mp4", False),
        ("", "http://localhost/v.mp4", False),
    ],
)
def test_plain_http_only_for_exactly_a_dev_host_and_port(entries: str, url: str, allowed: bool) -> None:
    # GIVEN the dev hosts as the settings read them from DEV_INSECURE_SOURCE_HOSTS
    dev_hosts = Settings(dev_insecure_source_hosts=entries).dev_insecure_source_hosts  # type: ignore[call-arg]

    problem = UrlPolicy(dev_hosts=dev_hosts).problem_with(url)

    assert (problem is None) is allowed
    if not allowed:
        assert problem == "it is plain http"


def test_a_video_urls_list_gives_the_first_usable_url() -> None:
    output = TaskOutput.model_validate(
        {"video_urls": [None, "", 7, "javascript:alert(1)", "https://img.theapi.app/a.mp4", "https://x.test/b.mp4"]}
    )

    location = locate_video(output)

    assert location.video_url == location.video_raw_url == "https://img.theapi.app/a.mp4"
    assert location.refused == {"video_url": "it is not a URL"}  # the 7: noted, not used


def test_a_refused_video_url_is_not_located_and_says_why() -> None:
    output = TaskOutput.model_validate(
        {"video_url": "javascript:alert(1)", "thumbnail_url": "https://img.theapi.app/t.jpg"}
    )

    location = locate_video(output)

    assert (location.video_url, location.video_raw_url) == (None, None)
    assert location.refused == {"video_url": "it is not an https URL"}


def test_a_refused_raw_url_falls_back_to_the_video_and_a_refused_thumbnail_is_dropped() -> None:
    output = TaskOutput.model_validate(
        {
            "video": {"url": "https://storage.cdn-luma.com/v.mp4"},
            "video_raw": {"url": "https://user:pw@storage.cdn-luma.com/raw.mp4"},
            "thumbnail": {"url": "javascript:alert(1)"},
        }
    )

    location = locate_video(output)

    assert location.video_url == location.video_raw_url == "https://storage.cdn-luma.com/v.mp4"
    assert location.thumbnail_url is None
    assert location.refused == {"video_raw_url": "it carries credentials", "thumbnail_url": "it is not an https URL"}


def test_provider_text_is_cut_to_a_storable_length_with_an_ellipsis() -> None:
    error = TaskError(message="m" * 5_000, raw_message="r" * 5_000)

    described = error.describe()

    assert described is not None
    assert len(described) == MAX_PROVIDER_TEXT_CHARS
    assert described.startswith("mmm") and described.endswith("…")
    assert bounded_text("short") == "short"
    assert bounded_text("x" * MAX_PROVIDER_TEXT_CHARS) == "x" * MAX_PROVIDER_TEXT_CHARS
    assert bounded_text("bad \ud800 surrogate") == "bad ? surrogate"  # storable: DynamoDB takes UTF-8 only


@pytest.mark.parametrize("consume", [-1, 2**53 + 1])
def test_a_cost_no_bill_can_have_is_no_cost(consume: int) -> None:
    task = Task.model_validate({"task_id": "t", "status": "completed", "meta": {"usage": {"consume": consume}}})

    assert points_consumed(task) is None


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
