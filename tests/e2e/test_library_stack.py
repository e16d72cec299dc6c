"""End to end, the library people manage: `make dev`'s stack as its own process, driven over HTTP through its API
Gateway (routes from serverless.yml), its save worker processes and the fake PiAPI — save with the thumbnail,
the thumbnail and the download from R2 after PiAPI deleted its files, campaigns and usage, an expired preview
found by the check and refused by Save, and deletion leaving nothing in the bucket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from devtools.local_jwt import mint
from tests.stack_process import RunningStack, read_its_table, running_stack
from video_library import db

CAMPAIGN = "e2e-library"


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack() as running:
        yield running


class User:
    def __init__(self, stack: RunningStack, name: str) -> None:
        self.api = stack.api()
        self.headers = {"authorization": f"Bearer {mint(name)}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.api.get(path, params=params, headers=self.headers)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.api.post(path, json=body, headers=self.headers)

    def delete(self, path: str) -> httpx.Response:
        return self.api.delete(path, headers=self.headers)

    def video(self, video_id: str) -> dict[str, Any]:
        answer = self.get(f"/api/video/{video_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def wait(self, video_id: str, field: str, value: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            shown = self.video(video_id)
            if shown[field] == value:
                return shown
            time.sleep(0.2)
        pytest.fail(f"video {video_id} never had {field} = {value}: {shown}")

    def generate(self, prompt: str, **extra: Any) -> str:
        answer = self.post("/api/video/generate", {"campaign_id": CAMPAIGN, "prompt": prompt, **extra})
        assert answer.status_code == 202, answer.text
        video_id: str = answer.json()["video_id"]
        return video_id


def expire_at_piapi(stack: RunningStack, video_id: str) -> None:
    record = db.get_video(video_id, consistent=True)
    assert record is not None and record.task_id
    assert httpx.post(f"{stack.piapi_url}/_fake/expire/{record.task_id}").status_code == 200


def keys_of(stack: RunningStack, video_id: str) -> list[str]:
    s3 = boto3.client(
        "s3", endpoint_url=stack.aws_url, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l"
    )
    listed = s3.list_objects_v2(Bucket="video-library", Prefix=f"campaigns/{CAMPAIGN}/").get("Contents", [])
    return sorted(item["Key"] for item in listed if video_id in item["Key"])


def test_a_library_managed_over_http(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    read_its_table(stack, monkeypatch)
    user = User(stack, "frank")

    # GIVEN a Luma video (it comes with a thumbnail) completed by the fake PiAPI, saved through the worker
    kept = user.generate("A lighthouse at dawn", model="luma", task_type="video_generation")
    user.wait(kept, "status", "completed")
    assert user.post("/api/video/save-to-library", {"video_id": kept}).status_code == 202
    saved = user.wait(kept, "save_state", "saved")

    # WHEN PiAPI deletes its files
    record = db.get_video(kept, consistent=True)
    assert record is not None and record.thumbnail_url
    provider_thumbnail = record.thumbnail_url
    expire_at_piapi(stack, kept)
    assert httpx.get(provider_thumbnail).status_code == 404

    # THEN the card still has its picture and its file, from R2, and Download downloads under the prompt's name
    shown = user.video(kept)
    thumbnail = httpx.get(shown["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    download = httpx.get(shown["download_url"])
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="a-lighthouse-at-dawn.mp4"'
    assert saved["duration_s"] and saved["width"] and saved["height"]
    assert keys_of(stack, kept) == [
        f"campaigns/{CAMPAIGN}/thumbnails/{kept}.jpg",
        f"campaigns/{CAMPAIGN}/videos/{kept}.mp4",
    ]
    usage = user.get("/api/video/storage-usage", campaign_id=CAMPAIGN).json()
    assert usage["saved_videos"] == 1 and usage["total_bytes"] == len(download.content) + len(thumbnail.content)
    campaigns = user.get("/api/video/campaigns").json()["items"]
    assert [(c["campaign_id"], c["saved_videos"]) for c in campaigns] == [(CAMPAIGN, 1)]

    # GIVEN a preview whose file PiAPI deleted
    gone = user.generate("fog over a harbour")
    user.wait(gone, "status", "completed")
    expire_at_piapi(stack, gone)

    # WHEN the page asks whether the previews it shows are still there
    checked = user.post("/api/video/check-previews", {"video_ids": [gone, kept]}).json()

    # THEN the gone one is marked expired (nothing to play, no Save), the saved one is not a preview
    assert {r["video_id"]: r["preview"] for r in checked["results"]} == {gone: "expired", kept: "not_a_preview"}
    assert user.video(gone)["preview_expired"] is True and user.video(gone)["video_url"] is None
    refused = user.post("/api/video/save-to-library", {"video_id": gone})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "preview_expired"

    # WHEN both are deleted, one through the route, one in bulk
    deleted = user.delete(f"/api/video/{kept}")
    bulk = user.post("/api/video/delete", {"video_ids": [gone]}).json()

    # THEN nothing of them is left: records, objects, usage
    assert deleted.status_code == 200 and deleted.json()["outcome"] == "deleted"
    assert bulk["deleted"] == 1
    assert user.get(f"/api/video/{kept}").status_code == 404
    assert keys_of(stack, kept) == []
    usage = user.get("/api/video/storage-usage", campaign_id=CAMPAIGN).json()
    assert (usage["saved_videos"], usage["total_bytes"]) == (0, 0)
    assert user.get("/api/video/library", campaign_id=CAMPAIGN).json()["items"] == []
