"""The library page in a real browser, against the local stack: sign in, generate, watch, play, save, fail.

Every locator goes by role or label, as assistive technology would (a button that is not a button, an input
without a label, is not found). Expectations wait (Playwright's auto-waiting, generous timeouts); nothing
measures time. Background saves (progress, failures, retries, bulk) are in test_background_saves.py.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from devtools.local_jwt import mint
from tests.browser.conftest import Screenshot
from tests.browser.library_page import (
    generate,
    saved_mark_of,
    sign_in,
    signed_in_line,
    status_of,
    toasts,
    usage_line,
)
from tests.stack_process import RunningStack


def test_generate_watch_play_and_save_to_library(page: Page, stack: RunningStack, screenshot: Screenshot) -> None:
    # GIVEN a signed-in user with nothing saved yet
    sign_in(page, stack, "alice")
    expect(usage_line(page)).to_have_text("Storage: no saved videos in campaign 42 yet.")
    expect(page.locator("#list-status")).to_have_text("No videos in campaign 42 yet: generate one above.")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((e) => e.offsetParent !== null && e.labels.length === 0
                                && !e.getAttribute('aria-label')).map((e) => e.id)"""
    )
    assert unlabelled == []
    screenshot("signed-in")

    # WHEN a video is generated: the card appears pending, cost not known, and updates itself until completed
    prompt = "a paper boat drifting down a rainy street"
    card = generate(page, prompt, model="Kling (video generation)")
    expect(card).to_be_visible()
    expect(card.locator(".cost")).to_have_text("not known yet")
    screenshot("requested", show=card)
    expect(status_of(card)).to_have_text("Completed")
    expect(card.locator(".facts")).to_contain_text("ProviderKling")  # a display name, not "kling (kling)"
    expect(card.locator(".cost")).to_have_text("$0.26")  # 2,600,000 PiAPI points
    thumbnail = card.locator("img")
    expect(thumbnail).to_have_attribute("src", re.compile(f"^{re.escape(stack.piapi_url)}/files/"))
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    # A preview's file is on the provider's origin, where a browser opens it rather than downloads it: "Open"
    opener = card.get_by_role("link", name="Open")
    expect(opener).to_have_attribute("target", "_blank")
    expect(card.get_by_role("link", name="Download")).to_have_count(0)
    provider_file = opener.get_attribute("href")
    assert provider_file is not None and provider_file.startswith(f"{stack.piapi_url}/files/")
    assert "watermark" not in provider_file  # the raw (unwatermarked) file, Kling's resource_without_watermark
    save = card.get_by_role("button", name="Save to Library")
    expect(save).to_be_enabled()
    expect(saved_mark_of(card)).to_have_count(0)
    screenshot("completed", show=card)

    # AND saved (in the background: the request answers at once, the card follows the record)
    with page.expect_response(lambda r: r.url.endswith("/api/video/save-to-library")) as answer:
        save.click()
    assert answer.value.status == 202, answer.value.text()

    # THEN the mark and one success toast show, the usage line counts it, the links point at our copy
    expect(saved_mark_of(card)).to_be_visible()
    saved_toast = toasts(page).filter(has_text="Video saved to library: “a paper boat drifting down a rainy")
    expect(saved_toast).to_have_count(1)
    expect(card.get_by_role("button", name="Save to Library")).to_have_count(0)
    expect(usage_line(page)).to_have_text(
        re.compile(r"^Storage: 1 saved video, [\d.]+ kB, under \$0\.01 a month \(at \$[\d.]+ per GB-month\)\.$")
    )
    download = card.get_by_role("link", name="Download")
    expect(download).to_have_attribute("href", re.compile(f"^{re.escape(stack.aws_url)}/video-library/campaigns/42/"))
    expect(download).to_have_attribute("download", "a-paper-boat-drifting-down-a-rainy-street.mp4")
    expect(card.get_by_role("link", name="Open")).to_have_count(0)
    copy = httpx.get(download.get_attribute("href") or "", timeout=30)
    assert copy.status_code == 200 and copy.content == httpx.get(provider_file, timeout=30).content
    # The facts read from the file's own header on the way: its size, resolution and duration
    facts = card.locator(".facts")
    expect(facts).to_contain_text("Size62.9 kB")
    expect(facts).to_contain_text("Resolution320 \u00d7 180")  # a multiplication sign
    expect(card.locator(".duration-badge")).to_have_text("0:03")
    screenshot("saved", show=card)

    # AND a refresh brings no second toast: what happened is said once
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#list-status")).to_have_text("1 video in campaign 42.")
    expect(saved_toast).to_have_count(1)

    # AND the picture plays the saved video in a dialog, from the keyboard too
    card.get_by_role("button", name=re.compile(f"^Play {re.escape(prompt)}")).focus()
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

    # AND after a reload the video is still saved, and nothing is announced again
    page.reload()
    expect(saved_mark_of(card)).to_be_visible()
    expect(card.get_by_role("button", name="Save to Library")).to_have_count(0)
    expect(usage_line(page)).to_contain_text("1 saved video")
    expect(toasts(page)).to_have_count(0)
    screenshot("reloaded", show=card)


def test_pasted_token_campaigns_failed_videos_and_sign_out(
    page: Page, stack: RunningStack, screenshot: Screenshot
) -> None:
    # GIVEN a user signed in with a pasted token (as with a real identity provider), in another campaign
    page.goto(f"{stack.url}/")
    page.get_by_label("Access token").fill(mint("carol"))
    page.get_by_role("button", name="Use this token").click()
    expect(signed_in_line(page)).to_have_text("Signed in as carol")
    page.get_by_label("Campaign", exact=True).select_option(label="New campaign…")
    page.get_by_label("New campaign id").fill("spring-launch")
    page.get_by_role("button", name="Use", exact=True).click()
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
    expect(card.get_by_role("button")).to_have_text(["Delete"])  # nothing to play or save
    expect(card.locator(".facts")).to_contain_text("ProviderLuma")
    screenshot("failed", show=card)

    # AND the picker now lists the campaign; campaign 42 (empty, so typed again) does not list the video; the
    # campaign survives a reload
    picker = page.get_by_label("Campaign", exact=True)
    expect(picker.locator("option")).to_have_text(["spring-launch", "New campaign…"])
    picker.select_option(label="New campaign…")
    page.get_by_label("New campaign id").fill("42")
    page.get_by_label("New campaign id").press("Enter")
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
