"""A saved video keeps everything it shows, and downloads as a file: the thumbnail copied into R2 beside the video
(through the guarded download, images only, best effort), served from R2 once the provider's copy is gone, and a
download URL whose answer really carries ``Content-Disposition: attachment`` with a name made from the prompt —
on the presigned URL, and on the object itself for a public bucket."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from devtools.video_source import image_bytes
from functions.library_api.handler import handler
from tests.conftest import log_records
from tests.save_support import BUCKET, MIB, PART, SaveStack, completed_video
from video_library import source, thumbnail
from video_library.r2 import thumbnail_object_key, video_object_key
from video_library.settings import get_settings

PROMPT = 'A "paper" boat / drifting down a rainy street'
FILENAME = "a-paper-boat-drifting-down-a-rainy-street.mp4"


def view(video_id: str) -> dict[str, Any]:
    event = http_api_event(
        "GET",
        f"/api/video/{video_id}",
        route_key="GET /api/video/{video_id}",
        path_parameters={"video_id": video_id},
        claims={"sub": "alice"},
    )
    response = handler(event, LocalLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    body: dict[str, Any] = json.loads(response["body"])
    return body


def test_the_thumbnail_is_copied_beside_the_video_and_served_from_r2_after_the_providers_copy_is_gone(
    stack: SaveStack,
) -> None:
    # GIVEN a completed video whose provider gives a JPEG thumbnail
    provider_thumbnail = stack.source.url(image="jpg", gone="thumb-1")
    video = completed_video(stack.source.url(size=3000), thumbnail_url=provider_thumbnail, prompt=PROMPT)

    # WHEN it is saved
    record = stack.save_and_run(video.video_id)

    # THEN the bucket holds the thumbnail's exact bytes beside the video, as a JPEG
    key = thumbnail_object_key("42", video.video_id, "image/jpeg")
    _, jpeg = image_bytes("jpg")
    assert record.thumbnail_key == key == f"campaigns/42/thumbnails/{video.video_id}.jpg"
    assert stack.object_bytes(key) == jpeg
    head = stack.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "image/jpeg" and head["Metadata"]["video-id"] == video.video_id
    assert record.thumbnail_bytes == len(jpeg) and record.stored_bytes == 3000 + len(jpeg)
    # WHEN the provider deletes its copy
    stack.source.expire("thumb-1")
    assert httpx.get(provider_thumbnail).status_code == 404
    # THEN the view's thumbnail is the copy in R2, and a browser gets the picture from it
    shown = view(video.video_id)
    assert shown["thumbnail_url"].startswith(f"{stack.aws.url}/{BUCKET}/{key}?")
    answer = httpx.get(shown["thumbnail_url"])
    assert answer.status_code == 200 and answer.content == jpeg
    assert answer.headers["content-type"] == "image/jpeg"


def test_a_png_keeps_its_own_type_and_extension(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=1000), thumbnail_url=stack.source.url(image="png"))

    record = stack.save_and_run(video.video_id)

    assert record.thumbnail_key == f"campaigns/42/thumbnails/{video.video_id}.png"
    assert stack.object_bytes(record.thumbnail_key) == image_bytes("png")[1]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"image": "svg"}, "source_not_image"),
        ({"image": "svg", "type": "image/jpeg"}, "source_not_image"),
        ({"image": "html", "type": "image/png"}, "source_not_image"),
        ({"image": "jpg", "type": "text/html"}, "source_not_image"),
        ({"image": "jpg", "size": 5 * MIB}, "source_too_large"),
        ({"image": "jpg", "status": 404}, "source_gone"),
        ({"image": "jpg", "status": 500}, "source_unavailable"),
    ],
    ids=["svg", "svg-called-jpeg", "html-called-png", "jpeg-called-html", "too-large", "gone", "erroring"],
)
def test_a_thumbnail_that_cannot_be_kept_does_not_fail_the_save(
    stack: SaveStack, logs: Any, params: dict[str, Any], reason: str
) -> None:
    # GIVEN a video whose thumbnail is not a raster image we keep, is too large, or cannot be fetched
    provider_thumbnail = stack.source.url(**params)
    video = completed_video(stack.source.url(size=2000), thumbnail_url=provider_thumbnail)

    # WHEN it is saved
    record = stack.save_and_run(video.video_id)

    # THEN the video is saved, nothing else is in the bucket, and the view falls back to the provider's thumbnail
    assert record.save_state == "saved" and record.thumbnail_key is None and record.stored_bytes == 2000
    assert stack.keys() == [video_object_key("42", video.video_id)]
    assert view(video.video_id)["thumbnail_url"] == provider_thumbnail
    [line] = [r for r in log_records(logs) if r.get("message", "").startswith("the thumbnail could not be copied")]
    assert line["reason"] == reason and line["video_id"] == video.video_id


def test_a_thumbnail_at_an_internal_address_is_never_fetched(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch, loopback_only: list[Any]
) -> None:
    # GIVEN an allowed host that resolves to the cloud metadata address, as the thumbnail's host
    real_resolve = source.resolve_host
    monkeypatch.setattr(
        source,
        "resolve_host",
        lambda host, port: ["169.254.169.254"] if host == "cdn.example.test" else real_resolve(host, port),
    )
    video = completed_video(stack.source.url(size=1000), thumbnail_url="https://cdn.example.test/thumb.jpg")

    record = stack.save_and_run(video.video_id)

    assert record.save_state == "saved" and record.thumbnail_key is None
    assert loopback_only == []  # no connection was even attempted beyond loopback


def test_a_thumbnail_gets_at_most_its_own_time(stack: SaveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a thumbnail source that answers slower than the thumbnail's time allows
    monkeypatch.setattr(thumbnail, "THUMBNAIL_TIME_S", 1.0)
    video = completed_video(stack.source.url(size=1000), thumbnail_url=stack.source.url(image="jpg", delay_ms=3000))

    record = stack.save_and_run(video.video_id)

    assert record.save_state == "saved" and record.thumbnail_key is None


@pytest.mark.parametrize("size", [3000, PART + 1], ids=["single-put", "multipart"])
def test_the_download_url_answers_with_an_attachment_named_after_the_prompt(stack: SaveStack, size: int) -> None:
    video = completed_video(stack.source.url(size=size), prompt=PROMPT)
    stack.save_and_run(video.video_id)

    shown = view(video.video_id)
    answer = httpx.get(shown["download_url"])
    played = httpx.get(shown["video_url"])

    assert shown["download_filename"] == FILENAME
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == f'attachment; filename="{FILENAME}"'
    assert hashlib.sha256(answer.content).hexdigest() == hashlib.sha256(played.content).hexdigest()
    # the object carries the same disposition, for a public bucket whose URLs cannot carry one
    head = stack.s3.head_object(Bucket=BUCKET, Key=video_object_key("42", video.video_id))
    assert head["ContentDisposition"] == f'attachment; filename="{FILENAME}"'


def test_with_a_public_bucket_the_object_itself_downloads_under_the_name(
    stack: SaveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bucket with a public domain: its URLs cannot carry a disposition, the object must
    monkeypatch.setenv("R2_PUBLIC_BASE_URL", "https://videos.example.com")
    get_settings.cache_clear()
    video = completed_video(stack.source.url(size=3000), prompt="纸船 in the rain")
    stack.save_and_run(video.video_id)
    key = video_object_key("42", video.video_id)

    shown = view(video.video_id)
    # what any plain GET of the object answers (here a signed one without overrides: the public domain's view)
    plain = httpx.get(stack.s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}))

    assert shown["download_url"] == shown["video_url"] == f"https://videos.example.com/{key}"
    expected = "attachment; filename=\"in-the-rain.mp4\"; filename*=UTF-8''%E7%BA%B8%E8%88%B9-in-the-rain.mp4"
    assert plain.status_code == 200 and plain.headers["content-disposition"] == expected
    assert shown["download_filename"] == "in-the-rain.mp4"


def test_a_preview_says_it_cannot_be_downloaded_here(stack: SaveStack) -> None:
    video = completed_video(stack.source.url(size=1000), prompt=PROMPT)

    shown = view(video.video_id)

    assert shown["download_url"] is None
    assert shown["video_raw_url"] == video.provider_video_raw_url  # what the page offers as "Open"
    assert shown["download_filename"] == FILENAME
