"""What the browser tests do on the library page, as a user would (by role and label), and what they ask the
stack directly: videos made through the API (with the fake PiAPI's options), records, the fake PiAPI's controls.

Waiting is always for a state (Playwright's expectations, or a record reaching a state within a generous
deadline); nothing measures how long anything took.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.stack_process import RunningStack, read_its_table
from video_library import db

# Generous: the machine is shared; a slow run must not fail a test that would pass.
SERVER_WAIT_S = 90.0
MINUTE = timedelta(minutes=1)


def sign_in(page: Page, stack: RunningStack, user: str) -> None:
    page.goto(f"{stack.url}/")
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(signed_in_line(page)).to_have_text(f"Signed in as {user}")


def signed_in_line(page: Page) -> Locator:
    return page.locator("#signed-in p")


def generate(page: Page, prompt: str, model: str | None = None) -> Locator:
    """Generate through the form; the answer must be a pending video. The video's card."""
    page.get_by_label("Prompt").fill(prompt)
    if model is not None:
        page.get_by_label("Model").select_option(label=model)
    with page.expect_response(lambda r: r.url.endswith("/api/video/generate")) as answer:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert answer.value.status == 202, answer.value.text()
    assert answer.value.json()["status"] == "pending"
    return card_of(page, prompt)


class Api:
    """The library API as one user, straight over HTTP (what the page would see)."""

    def __init__(self, stack: RunningStack, user: str) -> None:
        token = httpx.post(f"{stack.url}/_dev/token", json={"user": user}, timeout=30).json()["token"]
        self.client = httpx.Client(base_url=stack.url, headers={"authorization": f"Bearer {token}"}, timeout=30)

    def generate(
        self,
        prompt: str,
        *,
        model: str = "Qubico/hunyuan",
        task_type: str = "txt2video",
        campaign_id: str = "42",
        options: dict[str, Any] | None = None,
    ) -> str:
        answer = self.client.post(
            "/api/video/generate",
            json={
                "campaign_id": campaign_id,
                "prompt": prompt,
                "model": model,
                "task_type": task_type,
                "options": options or {},
            },
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["video_id"])

    def video(self, video_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/video/{video_id}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    def wait_for(self, video_id: str, field: str, *values: object) -> dict[str, Any]:
        """The video's view once ``field`` is one of ``values`` (within a generous deadline)."""
        deadline = time.monotonic() + SERVER_WAIT_S
        while True:
            view = self.video(video_id)
            if view[field] in values:
                return view
            assert time.monotonic() < deadline, f"{field} never became one of {values}: {view}"
            time.sleep(0.25)

    def wait_until_generated(self, *video_ids: str) -> None:
        for video_id in video_ids:
            self.wait_for(video_id, "status", "completed", "failed")


def card_of(page: Page, prompt: str) -> Locator:
    return page.get_by_role("article", name=prompt, exact=True)


def status_of(card: Locator) -> Locator:
    return card.locator(".badge .status-text")


def save_line_of(card: Locator) -> Locator:
    return card.locator(".save-line")


def saved_mark_of(card: Locator) -> Locator:
    return card.get_by_text("✓ Saved to Library")


def usage_line(page: Page) -> Locator:
    return page.locator("#storage-usage")


def toasts(page: Page) -> Locator:
    return page.locator(".toasts .toast")


def video_id_of(card: Locator) -> str:
    video_id = card.locator("xpath=..").get_attribute("data-video-id")
    assert video_id
    return video_id


def task_id_of(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, video_id: str) -> str:
    """PiAPI's task id of a video (the fake PiAPI's controls take it), read from the stack's table."""
    read_its_table(stack, monkeypatch)
    record = db.get_video(video_id, consistent=True)
    assert record is not None and record.task_id
    return record.task_id


def fake_piapi(stack: RunningStack, control: str, task_id: str, body: dict[str, Any] | None = None) -> None:
    """``expire``, ``unexpire`` or ``flaky`` (``{"failures": N, "status": 503}``): see devtools/fake_piapi.py."""
    httpx.post(f"{stack.piapi_url}/_fake/{control}/{task_id}", json=body or {}, timeout=30).raise_for_status()


def expire_at_piapi(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, video_id: str) -> None:
    """PiAPI deletes the video's files (its video and thumbnail answer 404 from then on)."""
    fake_piapi(stack, "expire", task_id_of(stack, monkeypatch, video_id))


def backdate(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, video_id: str, completed_at: datetime) -> None:
    """Make a video as old as if it had completed at ``completed_at`` (created a minute before): a preview's expiry
    follows from these times, and no test can wait days for it."""
    read_its_table(stack, monkeypatch)
    record = db.get_video(video_id, consistent=True)
    assert record is not None
    table = type(record)
    record.update(actions=[table.completed_at.set(completed_at), table.created_at.set(completed_at - MINUTE)])


def queue_save_for_no_worker(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, video_id: str, user: str) -> None:
    """Mark a save of the video queued, as the save route does, without sending the worker a message: the save
    stays queued for as long as a test needs (the sweep sends a stalled one again only after 20 minutes)."""
    read_its_table(stack, monkeypatch)
    assert db.queue_save(video_id, user, db.utcnow())


def add_plain_videos(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, user: str, prompts: list[str]) -> None:
    """Write completed videos straight into the stack's table (many at once, newer than any made so far): a big
    library without generating it. They have no files: their cards have no picture and nothing to play."""
    read_its_table(stack, monkeypatch)
    table = db.bind()
    now = db.utcnow()
    with table.batch_write() as batch:
        for position, prompt in enumerate(prompts):
            video_id = db.new_video_id()
            at = now + timedelta(milliseconds=position)
            batch.save(
                table(
                    video_id,
                    user_id=user,
                    campaign_id="42",
                    user_campaign=db.user_campaign_key(user, "42"),
                    prompt=prompt,
                    prompt_search=db.searchable(prompt),
                    status="completed",
                    saved_to_r2=False,
                    created_at=at,
                    updated_at=at,
                    completed_at=at,
                    purge_shard=db.purge_shard_of(video_id),
                )
            )


def bucket_keys(stack: RunningStack, video_id: str) -> list[str]:
    """The keys of the stack's bucket (R2) that belong to this video: its video and its thumbnail once saved."""
    s3 = boto3.client(
        "s3", endpoint_url=stack.aws_url, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l"
    )
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="video-library", Prefix="campaigns/"):
        keys += [item["Key"] for item in page.get("Contents", []) if video_id in item["Key"]]
    return sorted(keys)


def show_videos(page: Page) -> None:
    """Refresh the list (videos made through the API since the page loaded) and bring it into view."""
    page.get_by_role("button", name="Refresh").click()
    page.locator("#videos-heading").scroll_into_view_if_needed()


def emulate_visibility(page: Page, *, hidden: bool) -> None:
    """Headless Chromium always reports a visible page (Playwright has no API for a background tab; CDP neither):
    shadow the document's visibility getters and fire the event, as a browser does when the tab is switched."""
    page.evaluate(
        """(hidden) => {
            const state = hidden ? "hidden" : "visible";
            Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
            Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )
