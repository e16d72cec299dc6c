"""The library API through the real handler: listing, one video, generate, storage usage, reconciliation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.apigw import http_api_event
from devtools.eventbridge import scheduled_event
from devtools.fake_piapi import FakePiapi
from devtools.lambda_context import LocalLambdaContext
from functions.library_api.handler import handler
from tests.save_support import SaveStack, completed_video
from video_library import db
from video_library.models import NewVideo
from video_library.settings import get_settings

API_KEY = "library-test-key"


def call(
    method: str,
    path: str,
    *,
    user: str | None = "alice",
    query: str = "",
    body: Any = None,
    path_parameters: dict[str, str] | None = None,
) -> tuple[int, Any]:
    route_key = f"{method} /api/video/{{video_id}}" if path_parameters else f"{method} {path}"
    event = http_api_event(
        method,
        path,
        route_key=route_key,
        query=query,
        path_parameters=path_parameters,
        body=json.dumps(body) if body is not None else None,
        headers={"content-type": "application/json"},
        claims={"sub": user} if user else None,
    )
    response = handler(event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def created(user: str, campaign: str, minutes_ago: int, **fields: Any) -> db.VideoRecord:
    return db.create_video(
        NewVideo(
            user_id=user,
            campaign_id=campaign,
            prompt=f"video {minutes_ago}",
            created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
            **fields,
        )
    )


@pytest.mark.usefixtures("aws")
def test_the_library_lists_only_the_callers_videos_newest_first_in_pages() -> None:
    mine = [created("alice", "42" if i % 2 else "43", minutes_ago=i) for i in range(7)]
    created("bob", "42", minutes_ago=0)

    status, first = call("GET", "/api/video/library", query="limit=3")
    _, second = call("GET", "/api/video/library", query=f"limit=3&cursor={first['next_cursor']}")
    _, third = call("GET", "/api/video/library", query=f"limit=3&cursor={second['next_cursor']}")

    assert status == 200
    listed = [item["video_id"] for page in (first, second, third) for item in page["items"]]
    assert listed == [video.video_id for video in mine]  # newest first, nobody else's
    assert third["next_cursor"] is None


@pytest.mark.usefixtures("aws")
def test_the_library_filters_by_campaign_status_and_saved() -> None:
    in_42 = [created("alice", "42", minutes_ago=i) for i in range(3)]
    created("alice", "43", minutes_ago=1)

    _, campaign = call("GET", "/api/video/library", query="campaign_id=42")
    _, pending = call("GET", "/api/video/library", query="status=pending&saved=false")
    _, completed = call("GET", "/api/video/library", query="status=completed")

    assert [item["video_id"] for item in campaign["items"]] == [video.video_id for video in in_42]
    assert len(pending["items"]) == 4
    assert completed["items"] == []


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "status=exploded",
        "saved=maybe",
        "campaign_id=a/b",
        "cursor=%%%",
        "cursor=eyJmb28iOiAxfQ",
    ],
)
def test_bad_listing_parameters_are_4xx_json(query: str) -> None:
    status, body = call("GET", "/api/video/library", query=query)

    assert status in (400, 422)
    assert body["error"]["code"] in ("bad_request", "invalid_request")


@pytest.mark.usefixtures("aws")
def test_a_cursor_from_another_users_listing_is_refused() -> None:
    for i in range(3):
        created("bob", "42", minutes_ago=i)
    _, bobs = call("GET", "/api/video/library", user="bob", query="limit=1")

    status, body = call("GET", "/api/video/library", user="alice", query=f"limit=1&cursor={bobs['next_cursor']}")

    assert status == 400
    assert body["error"]["code"] == "bad_request"


@pytest.mark.usefixtures("aws")
def test_one_video_is_the_owners_only() -> None:
    video = created("alice", "42", minutes_ago=1, task_type="txt2video", model="Qubico/hunyuan", provider="hunyuan")

    status, body = call("GET", f"/api/video/{video.video_id}", path_parameters={"video_id": video.video_id})
    other, _ = call("GET", f"/api/video/{video.video_id}", user="bob", path_parameters={"video_id": video.video_id})

    assert status == 200
    assert body["video_id"] == video.video_id
    assert (body["status"], body["provider"], body["saved_to_r2"], body["video_url"]) == (
        "pending",
        "hunyuan",
        False,
        None,
    )
    assert other == 404


@pytest.mark.usefixtures("aws")
def test_no_claims_is_401_on_every_route() -> None:
    for method, path in (
        ("GET", "/api/video/library"),
        ("GET", "/api/video/storage-usage"),
        ("POST", "/api/video/generate"),
    ):
        status, body = call(method, path, user=None, body={})
        assert status == 401
        assert body["error"]["code"] == "unauthorized"


def test_saved_videos_get_playable_r2_urls_and_count_in_storage_usage(stack: SaveStack) -> None:
    kept = completed_video(stack.source.url(size=3000))
    unsaved = completed_video(stack.source.url(size=1000))
    other_campaign = completed_video(stack.source.url(size=500), campaign_id="43")
    assert stack.save_and_run(kept.video_id).save_state == "saved"
    assert stack.save_and_run(other_campaign.video_id).save_state == "saved"

    _, listing = call("GET", "/api/video/library", query="saved=true&campaign_id=42")
    _, usage = call("GET", "/api/video/storage-usage", query="campaign_id=42")
    _, everything = call("GET", "/api/video/storage-usage")
    _, preview = call("GET", f"/api/video/{unsaved.video_id}", path_parameters={"video_id": unsaved.video_id})

    [item] = listing["items"]
    assert item["video_id"] == kept.video_id
    assert "X-Amz-Signature=" in item["video_url"] and item["video_url"] == item["video_raw_url"]
    assert item["size_bytes"] == 3000
    assert preview["video_url"] == unsaved.provider_video_url  # unsaved: still PiAPI's file
    assert usage == {
        "campaign_id": "42",
        "saved_videos": 1,
        "total_bytes": 3000,
        "total_gb": 3e-06,
        "usd_per_gb_month": 0.015,
        "estimated_monthly_usd": 0.0,
    }
    assert (everything["saved_videos"], everything["total_bytes"]) == (2, 3500)


@pytest.fixture
def fake_piapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePiapi]:
    server = FakePiapi(API_KEY, delay_s=0.05).start()
    server.webhooks_enabled = False  # as when PiAPI's deliveries do not reach us
    monkeypatch.setenv("PIAPI_BASE_URL", server.base_url)
    # The fake serves its results over plain http: allowed for its host and port only, as in `make dev`.
    monkeypatch.setenv("DEV_INSECURE_SOURCE_HOSTS", server.base_url.removeprefix("http://").rstrip("/"))
    monkeypatch.setenv("PIAPI_API_KEY", API_KEY)
    get_settings.cache_clear()
    yield server
    server.stop()


@pytest.mark.usefixtures("aws")
def test_generate_answers_202_with_the_pending_video(fake_piapi: FakePiapi) -> None:
    status, body = call(
        "POST",
        "/api/video/generate",
        body={"campaign_id": "42", "prompt": "a fox", "model": "luma", "task_type": "video_generation"},
    )
    bad, error = call("POST", "/api/video/generate", body={"campaign_id": "42", "prompt": "a fox", "model": "nope"})

    assert status == 202
    assert (body["status"], body["model"], body["provider"], body["campaign_id"]) == ("pending", "luma", "luma", "42")
    assert len(fake_piapi.tasks) == 1
    assert bad == 422
    assert error["error"]["code"] == "invalid_request"


@pytest.mark.usefixtures("aws")
def test_reconciliation_completes_tasks_whose_webhook_never_came(fake_piapi: FakePiapi) -> None:
    from functions.reconcile.handler import handler as reconcile

    _, done = call("POST", "/api/video/generate", body={"campaign_id": "42", "prompt": "a quiet task"})
    _, failing = call("POST", "/api/video/generate", body={"campaign_id": "42", "prompt": "this will fail"})
    # created after the cutoff below (the event's time has whole seconds, so the margin is minutes)
    young = created("alice", "42", minutes_ago=-5, task_id="young-task")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        t["status"] not in ("completed", "failed") for t in fake_piapi.tasks.values()
    ):
        time.sleep(0.05)
    now = datetime.now(UTC) + timedelta(minutes=11)  # the first two are 11 minutes old, the threshold 10

    summary = reconcile(scheduled_event(now), LocalLambdaContext())

    assert fake_piapi.deliveries == []  # no webhook helped
    assert summary["examined"] == 2 and summary["updated"] == 2 and summary["complete"] is True
    completed = db.get_video(done["video_id"], consistent=True)
    assert completed is not None and completed.status == "completed" and completed.provider_video_url
    assert completed.in_flight_shard is None
    failed = db.get_video(failing["video_id"], consistent=True)
    assert failed is not None and failed.status == "failed"
    untouched = db.get_video(young.video_id, consistent=True)
    assert untouched is not None and untouched.status == "pending"
    # a second run finds nothing left to ask about those two
    assert reconcile(scheduled_event(now), LocalLambdaContext())["examined"] == 0


@pytest.mark.usefixtures("aws")
def test_the_sample_events_in_events_are_served(fake_piapi: FakePiapi) -> None:
    from tests.conftest import load_event

    listed = handler(load_event("library_list"), LocalLambdaContext())
    generated = handler(load_event("library_generate"), LocalLambdaContext())

    assert listed["statusCode"] == 200
    assert generated["statusCode"] == 202
    assert json.loads(generated["body"])["model"] == "Qubico/hunyuan"
    assert json.loads(handler(load_event("library_list"), LocalLambdaContext())["body"])["items"][0]["status"] == (
        "pending"
    )
