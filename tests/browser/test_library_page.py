"""The library page in a real browser, against the local stack: sign in, generate, watch, play, save, fail.

Every locator goes by role or label, as assistive technology would (a button that is not a button, an input
without a label, is not found). Expectations wait (Playwright's auto-waiting, generous timeouts); nothing
measures time.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from devtools.local_jwt import mint
from tests.browser.conftest import Screenshot
from tests.stack_process import RunningStack, read_its_table
from video_library import db


def sign_in(page: Page, stack: RunningStack, user: str) -> None:
    page.goto(f"{stack.url}/")
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("Signed in as")).to_have_text(f"Signed in as {user}")


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


def card_of(page: Page, prompt: str) -> Locator:
    return page.get_by_role("article", name=prompt, exact=True)


def status_of(card: Locator) -> Locator:
    return card.locator(".badge .status-text")


def usage_line(page: Page) -> Locator:
    return page.locator("#storage-usage")


def test_generate_watch_play_and_save_to_library(page: Page, stack: RunningStack, screenshot: Screenshot) -> None:
    # GIVEN a signed-in user with nothing saved yet
    sign_in(page, stack, "alice")
    expect(usage_line(page)).to_have_text("Storage: no saved videos in campaign 42 yet.")
    expect(page.locator("#list-status")).to_have_text("No videos in campaign 42 yet: generate one above.")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((e) => e.offsetParent !== null && e.labels.length === 0).map((e) => e.id)"""
    )
    assert unlabelled == []
    screenshot("signed-in")

    # WHEN a video is generated: the card appears pending and updates itself (no reload) until completed
    prompt = "a paper boat drifting down a rainy street"
    card = generate(page, prompt, model="Kling (video generation)")
    expect(card).to_be_visible()
    screenshot("requested")
    expect(status_of(card)).to_have_text("Ready")
    expect(card).to_contain_text("kling")
    expect(card).to_contain_text("$0.26")  # 2,600,000 PiAPI points
    thumbnail = card.locator("img")
    expect(thumbnail).to_have_attribute("src", re.compile(f"^{re.escape(stack.piapi_url)}/files/"))
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    download = card.get_by_role("link", name="Download")
    provider_file = download.get_attribute("href")
    assert provider_file is not None and provider_file.startswith(f"{stack.piapi_url}/files/")
    assert "watermark" not in provider_file  # the raw (unwatermarked) file, Kling's resource_without_watermark
    save = card.get_by_role("button", name="Save to Library")
    expect(save).to_be_enabled()
    expect(card.get_by_text("✓ Saved to Library")).to_have_count(0)
    screenshot("completed")

    # AND saved
    save.click()

    # THEN the mark and the success toast show, the usage line counts it, the links point at our copy
    expect(card.get_by_text("✓ Saved to Library")).to_be_visible()
    expect(page.locator("#toast-status")).to_contain_text("Video saved to library!")
    expect(save).to_have_count(0)
    expect(usage_line(page)).to_have_text(
        re.compile(r"^Storage: 1 saved video, [\d.]+ kB, under \$0\.01 a month \(at \$[\d.]+ per GB-month\)\.$")
    )
    expect(download).to_have_attribute("href", re.compile(f"^{re.escape(stack.aws_url)}/video-library/campaigns/42/"))
    copy = httpx.get(download.get_attribute("href") or "", timeout=30)
    assert copy.status_code == 200 and copy.content == httpx.get(provider_file, timeout=30).content
    expect(card).to_contain_text("Size")
    screenshot("saved")

    # AND View plays the saved video in a dialog, from the keyboard too
    card.get_by_role("button", name="View").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=prompt)
    expect(dialog).to_be_visible()
    expect(dialog.locator("video")).to_have_attribute("src", re.compile(f"^{re.escape(stack.aws_url)}/"))
    page.wait_for_function(
        "() => { const v = document.getElementById('player-video');"
        " return v.error === null && v.duration > 2 && v.currentTime > 0.5; }"
    )
    screenshot("playing")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # AND after a reload the video is still saved
    page.reload()
    expect(card.get_by_text("✓ Saved to Library")).to_be_visible()
    expect(card.get_by_role("button", name="Save to Library")).to_have_count(0)
    expect(usage_line(page)).to_contain_text("1 saved video")
    screenshot("reloaded")


def test_a_save_whose_source_file_is_gone_says_why(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a completed video whose file PiAPI has deleted since
    sign_in(page, stack, "bob")
    prompt = "a lighthouse in a storm"
    card = generate(page, prompt)
    expect(status_of(card)).to_have_text("Ready")
    expect(card.get_by_text("No thumbnail")).to_be_visible()  # Hunyuan gives none: the placeholder says so
    video_id = card.locator("xpath=..").get_attribute("data-video-id")
    read_its_table(stack, monkeypatch)
    record = db.get_video(video_id or "", consistent=True)
    assert record is not None and record.task_id
    httpx.post(f"{stack.piapi_url}/_fake/expire/{record.task_id}").raise_for_status()
    screenshot("completed")

    # WHEN the user saves it
    card.get_by_role("button", name="Save to Library").click()

    # THEN an error toast says why, in words and with the API's message; nothing is marked saved
    alert = page.locator("#toast-alert")
    expect(alert).to_contain_text(f"Could not save “{prompt}”: The provider's file is no longer available")
    expect(alert).to_contain_text("the source answered HTTP 404")
    expect(card.get_by_role("button", name="Save to Library")).to_be_enabled()
    expect(card.get_by_text("✓ Saved to Library")).to_have_count(0)
    expect(card).to_contain_text("Last save failed:")
    expect(usage_line(page)).to_have_text("Storage: no saved videos in campaign 42 yet.")
    screenshot("error-toast")

    # AND the error stays until dismissed; after a reload the video is still unsaved, with the reason
    alert.get_by_role("button", name="Dismiss").click()
    expect(alert.locator(".toast")).to_have_count(0)
    page.reload()
    expect(status_of(card)).to_have_text("Ready")
    expect(card.get_by_text("✓ Saved to Library")).to_have_count(0)
    expect(card).to_contain_text("Last save failed:")
    record = db.get_video(video_id or "", consistent=True)
    assert record is not None and not record.saved_to_r2


def test_pasted_token_campaigns_failed_videos_and_sign_out(
    page: Page, stack: RunningStack, screenshot: Screenshot
) -> None:
    # GIVEN a user signed in with a pasted token (as with a real identity provider), in another campaign
    page.goto(f"{stack.url}/")
    page.get_by_label("Access token").fill(mint("carol"))
    page.get_by_role("button", name="Use this token").click()
    expect(page.get_by_text("Signed in as")).to_have_text("Signed in as carol")
    page.get_by_label("Campaign", exact=True).fill("spring-launch")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#list-status")).to_have_text("No videos in campaign spring-launch yet: generate one above.")

    # WHEN the API refuses a request, the toast says why, field by field
    page.get_by_label("Prompt").fill("   ")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#toast-alert")).to_contain_text("Could not generate the video: ")
    expect(page.locator("#toast-alert")).to_contain_text("(prompt: the prompt is blank).")
    page.locator("#toast-alert").get_by_role("button", name="Dismiss").click()

    # WHEN a generation fails
    prompt = "please fail this one"
    card = generate(page, prompt, model="Luma Dream Machine (video generation)")

    # THEN the card says so in words, with the reason, and offers nothing to save or play
    expect(status_of(card)).to_have_text("Failed")
    expect(card).to_contain_text("Generation failed: task failed: the fake PiAPI was asked to fail.")
    expect(card.get_by_role("button")).to_have_count(0)
    screenshot("failed")

    # AND campaign 42 does not list it; the campaign survives a reload
    page.get_by_label("Campaign", exact=True).fill("42")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#list-status")).to_have_text("No videos in campaign 42 yet: generate one above.")
    expect(card).to_have_count(0)
    page.reload()
    expect(page.get_by_label("Campaign", exact=True)).to_have_value("42")

    # AND signing out forgets the token
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # AND a token the API refuses brings the sign-in back with a clear message
    page.get_by_label("Access token").fill(mint("carol", secret="some-other-secret-of-at-least-32-bytes"))
    page.get_by_role("button", name="Use this token").click()
    expect(page.locator("#toast-alert")).to_contain_text("Please sign in again")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot("token-refused")
