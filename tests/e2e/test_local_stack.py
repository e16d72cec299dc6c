"""End to end: `make dev`'s stack as its own process on free ports, driven over HTTP as a user would.

Sign in, generate videos through the fake PiAPI, let its webhooks complete them, save one, purge 31 days
ahead; then check the bucket's bytes and the table's records directly, and that Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from devtools.local_jwt import mint
from tests.stack_process import RunningStack, read_its_table, running_stack
from video_library import db


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack() as running:
        yield running


@pytest.fixture
def table(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the stack's table from this process, through the same data-access code."""
    read_its_table(stack, monkeypatch)


def bucket(stack: RunningStack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def wait_for(video_id: str, status: str, timeout_s: float = 20) -> db.VideoRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = db.get_video(video_id, consistent=True)
        if record is not None and record.status == status:
            return record
        time.sleep(0.1)
    pytest.fail(f"video {video_id} never became {status}")


def generate(api: httpx.Client, token: str, prompt: str, **extra: Any) -> str:
    answer = api.post(
        "/api/video/generate",
        headers={"authorization": f"Bearer {token}"},
        json={"campaign_id": "7", "prompt": prompt, **extra},
    )
    assert answer.status_code == 202, answer.text
    video_id: str = answer.json()["video_id"]
    return video_id


def wait_for_save(api: httpx.Client, token: str, video_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Follow the video's save_state through the API until the save is over (saved or failed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view: dict[str, Any] = api.get(f"/api/video/{video_id}", headers={"authorization": f"Bearer {token}"}).json()
        if view["save_state"] in ("saved", "failed"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"the save of {video_id} did not end within {timeout_s:g} s")


@pytest.mark.usefixtures("table")
def test_the_whole_story_over_http(stack: RunningStack) -> None:
    api, token = stack.api(), mint("erin")

    # GIVEN two videos generated through the fake PiAPI and completed by its webhooks
    keeper = generate(api, token, "a lighthouse at dawn", model="kling", task_type="video_generation")
    preview = generate(api, token, "fog over a harbour")
    failing = generate(api, token, "please fail this one")
    kept = wait_for(keeper, "completed")
    wait_for(preview, "completed")
    failed = wait_for(failing, "failed")
    assert kept.provider_video_raw_url and kept.provider_video_raw_url != kept.provider_video_url  # Kling layout
    assert failed.error == "task failed: the fake PiAPI was asked to fail"

    # WHEN the user saves one of them
    no_token = api.post("/api/video/save-to-library", json={"video_id": keeper})
    saved = api.post(
        "/api/video/save-to-library",
        headers={"authorization": f"Bearer {token}"},
        json={"video_id": keeper, "campaign_id": 7},
    )

    # THEN the answer comes at once (queued), and the worker — its own process, fed by the save queue as Lambda's
    # event source mapping would — copies the provider's file into the bucket; the record points at it
    assert no_token.status_code == 401
    assert saved.status_code == 202, saved.text
    assert saved.json()["save_state"] == "queued"
    view = wait_for_save(api, token, keeper)
    assert view["save_state"] == "saved" and view["saved_to_r2"] is True
    stored = bucket(stack).get_object(Bucket="video-library", Key=view["r2_key"])["Body"].read()
    provider_file = httpx.get(kept.provider_video_raw_url).content
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(provider_file).hexdigest()
    assert stored[4:8] == b"ftyp"
    record = db.get_video(keeper, consistent=True)
    assert record is not None and record.saved_to_r2 and record.sha256 == hashlib.sha256(stored).hexdigest()
    assert (record.duration_s, record.width, record.height) == (3.0, 320, 180)  # read from the file as it passed
    assert httpx.get(view["video_url"]).content == stored

    # WHEN a dry run and then the purge run 31 days ahead
    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    dry = api.post("/_dev/purge", json={"time": later, "dry_run": True}).json()
    summary = api.post("/_dev/purge", json={"time": later}).json()

    # THEN the previews nobody saved are gone (the failed one too) and the saved video stays
    assert dry["dry_run"] is True and dry["deleted"] == 0 and dry["examined"] >= 2
    assert summary["deleted"] >= 2 and summary["complete"] is True
    assert db.get_video(preview, consistent=True) is None
    assert db.get_video(failing, consistent=True) is None
    assert db.get_video(keeper, consistent=True) is not None
    bucket(stack).head_object(Bucket="video-library", Key=view["r2_key"])


def test_bad_requests_get_clear_answers(stack: RunningStack) -> None:
    api, token = stack.api(), mint("frank")
    auth = {"authorization": f"Bearer {token}"}

    assert api.post("/_dev/purge", json={"time": "yesterday"}).status_code == 400
    assert (
        api.post(
            "/api/video/generate", headers=auth, json={"campaign_id": "7", "prompt": "x", "model": "dall-e"}
        ).status_code
        == 422
    )
    not_json = api.post(
        "/api/video/save-to-library", headers={**auth, "content-type": "application/json"}, content=b"{nope"
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_json"
    assert api.get("/nowhere").status_code == 404


def test_ctrl_c_stops_everything_cleanly(stack: RunningStack) -> None:
    stack.process.send_signal(signal.SIGINT)

    assert stack.process.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.url}/healthz", timeout=2)
