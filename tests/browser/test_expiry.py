"""Expiry on the library page: every preview says when it goes away, "Expiring soon" shows the near ones, the page
asks the provider about those (check-previews) and a preview found gone reads "Preview expired — it can no longer
be saved", with nothing to play, open or save; a file that cannot play says so in the player.

A preview's expiry follows from when it completed (PROVIDER_RETENTION_DAYS after it): the tests move a record's
times back rather than wait days, and pin the browser's clock, so that "today" is the same day for everyone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.browser.conftest import Screenshot
from tests.browser.library_page import (
    SERVER_WAIT_S,
    Api,
    backdate,
    card_of,
    expire_at_piapi,
    show_videos,
    sign_in,
    status_of,
    toasts,
)
from tests.stack_process import RunningStack

SERVER_WAIT_MS = int(SERVER_WAIT_S * 1000)
CHECK_ROUTE = "/api/video/check-previews"


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _checks_asked(requests: list[Request]) -> list[list[str]]:
    """The video ids of each check-previews request the page sent, in order."""
    return [sorted(r.post_data_json["video_ids"]) for r in requests if r.url.endswith(CHECK_ROUTE)]


def _until(page: Page, condition: Callable[[], bool]) -> None:
    """Wait (within a generous deadline) until ``condition`` holds; each look lets Playwright deliver the page's
    events (a routed request) to this process."""
    deadline = time.monotonic() + SERVER_WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        page.evaluate("0")


def _buttons_and_links(card: Locator) -> list[str]:
    return [text.strip() for text in card.locator("button, a[href]").all_text_contents()]


def test_previews_say_when_they_expire_and_the_near_ones_are_checked(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN previews completed long enough ago to expire at different times, as seen at noon (UTC) today: one in five
    # days, one in two, one later today, two past their estimate -- the file of one of those still at PiAPI, the
    # other's deleted -- and a saved video, which never expires
    api = Api(stack, "ivy")
    prompts = {
        "in_5_days": "a heron standing in a pond",
        "in_2_days": "a bakery at dawn",
        "today": "rain on a tin roof",
        "overdue_kept": "a street market at noon",
        "overdue_gone": "fog over a harbour",
    }
    ids = {name: api.generate(prompt) for name, prompt in prompts.items()}
    saved_id = api.generate("a kept video of the sea", model="luma", task_type="video_generation")
    api.wait_until_generated(*ids.values(), saved_id)
    assert api.client.post("/api/video/save-to-library", json={"video_id": saved_id}).status_code == 202
    api.wait_for(saved_id, "save_state", "saved")
    fresh = api.video(ids["today"])
    retention = _when(fresh["preview_expires_at"]) - _when(fresh["completed_at"])
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    expires = {
        "in_5_days": noon + timedelta(days=5),
        "in_2_days": noon + timedelta(days=2),
        "today": noon + timedelta(hours=1),
        "overdue_kept": noon - timedelta(hours=2),
        "overdue_gone": noon - timedelta(hours=3),
    }
    for name, at in expires.items():
        backdate(stack, monkeypatch, ids[name], completed_at=at - retention)
        assert _when(api.video(ids[name])["preview_expires_at"]) == at
    expire_at_piapi(stack, monkeypatch, ids["overdue_gone"])
    # (the browser's clock says noon: the page reads every expiry against it)
    page.clock.set_fixed_time(noon)
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))

    # WHEN the user opens the library
    sign_in(page, stack, "ivy")

    # THEN each preview says when it expires, the near ones stand out, the saved video says nothing of the kind
    def expiry_of(name: str) -> Locator:
        return card_of(page, prompts[name]).locator(".expiry")

    expect(expiry_of("in_5_days")).to_have_text("◷ Expires in 5 days")
    expect(expiry_of("in_5_days")).not_to_have_class(re.compile("expiry-soon"))
    expect(expiry_of("in_2_days")).to_have_text("◷ Expires in 2 days")
    expect(expiry_of("in_2_days")).to_have_class(re.compile("expiry-soon"))
    expect(expiry_of("today")).to_have_text("◷ Expires today")
    expect(expiry_of("overdue_kept")).to_have_text("◷ May expire any moment")
    expect(card_of(page, "a kept video of the sea").locator(".expiry")).to_have_count(0)
    # AND its tooltip says when, as an estimate
    expect(expiry_of("in_2_days").locator("time")).to_have_attribute("title", re.compile(r"\(an estimate\)"))

    # AND the page asked the provider, in one request, about exactly the previews due within three days or past
    gone = card_of(page, prompts["overdue_gone"])
    expect(gone.locator(".expired-note")).to_have_text("Preview expired — it can no longer be saved.")
    near = ("in_2_days", "today", "overdue_kept", "overdue_gone")
    assert _checks_asked(requests) == [sorted(ids[name] for name in near)]

    # AND the one whose file is gone can no longer be played, opened or saved: only deleted
    expect(status_of(gone)).to_have_text("Expired")
    expect(gone.locator(".thumb")).to_have_text("Preview expired")
    assert _buttons_and_links(gone) == ["Delete"]
    expect(gone.locator(".expiry")).to_have_count(0)
    told = f"The preview of “{prompts['overdue_gone']}” has expired at the provider: it can no longer be saved."
    expect(toasts(page).filter(has_text=told)).to_have_count(1)
    # AND the one past its estimate whose file is still there keeps its Save
    kept = card_of(page, prompts["overdue_kept"])
    expect(kept.get_by_role("button", name="Save to Library")).to_be_visible()
    assert api.video(ids["overdue_gone"])["preview_expired"] is True
    assert api.video(ids["overdue_kept"])["preview_expired"] is False
    screenshot("expiry-badges", show=card_of(page, prompts["today"]))
    screenshot("expired-preview", show=gone)

    # WHEN the user shows what expires soon
    with page.expect_response(lambda r: "show=expiring" in r.url) as listing:
        page.get_by_role("radio", name="Expiring soon").check()
    assert listing.value.status == 200

    # THEN only the previews that can still be saved and expire within three days (or are past), newest first
    expect(page.locator("#videos h3")).to_have_text(
        [prompts["in_2_days"], prompts["today"], prompts["overdue_kept"]], timeout=SERVER_WAIT_MS
    )
    expect(page.locator("#list-status")).to_have_text("3 previews expiring soon in campaign 42.")
    # AND the page does not ask about them again so soon (the API would not ask the provider either)
    assert len(_checks_asked(requests)) == 1
    screenshot("expiring-soon")


def test_a_file_that_cannot_play_says_so_and_the_card_turns_expired(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a completed Kling preview, its picture loaded from PiAPI, a week before it is due to expire
    api = Api(stack, "jack")
    prompt = "a paper lantern rising at night"
    video_id = api.generate(prompt, model="kling", task_type="video_generation")
    api.wait_until_generated(video_id)
    sign_in(page, stack, "jack")
    card = card_of(page, prompt)
    expect(card.locator(".expiry")).to_have_text(re.compile(r"^◷ Expires in [67] days$"))
    picture = card.locator("img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())

    # AND PiAPI deletes its files sooner than estimated
    expire_at_piapi(stack, monkeypatch, video_id)

    # WHEN the user plays it (the page's question to the provider held back a moment, to see the player meanwhile)
    held: list[Route] = []
    page.route(f"**{CHECK_ROUTE}", lambda route: held.append(route))
    card.get_by_role("button", name=f"Play {prompt}").click()

    # THEN the player shows a message instead of a black box, and the page asks the provider about that preview
    dialog = page.get_by_role("dialog", name=prompt)
    expect(dialog.get_by_role("alert")).to_have_text(
        "This video cannot be played: its file could not be loaded. Asking the provider whether it still has it…"
    )
    expect(dialog.locator("video")).to_be_hidden()
    _until(page, lambda: bool(held))
    assert [route.request.post_data_json for route in held] == [{"video_ids": [video_id]}]
    screenshot("player-error")
    held[0].continue_()

    # AND once the provider has answered, the player and the card say the preview has expired
    expect(dialog.get_by_role("alert")).to_have_text(
        "This preview has expired: the provider no longer has its file, so it can no longer be played or saved."
    )
    screenshot("player-expired")
    dialog.get_by_role("button", name="Close").click()
    expect(card.locator(".expired-note")).to_have_text("Preview expired — it can no longer be saved.")
    assert _buttons_and_links(card) == ["Delete"]
    assert api.video(video_id)["preview_expired"] is True
    screenshot("card-expired", show=card)

    # AND after a reload the card still says so
    page.reload()
    expect(card_of(page, prompt).locator(".expired-note")).to_be_visible()
    expect(card_of(page, prompt).get_by_role("button", name="Save to Library")).to_have_count(0)


def test_a_save_that_finds_the_file_gone_ends_the_preview(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a completed preview whose file PiAPI has deleted (nobody knows yet: it is not due for a week)
    sign_in(page, stack, "kate")
    api = Api(stack, "kate")
    prompt = "a kettle coming to the boil"
    video_id = api.generate(prompt)
    api.wait_until_generated(video_id)
    expire_at_piapi(stack, monkeypatch, video_id)
    show_videos(page)
    card = card_of(page, prompt)
    expect(status_of(card)).to_have_text("Completed")

    # WHEN the user saves it
    card.get_by_role("button", name="Save to Library").click()

    # THEN the save finds the file gone: an error toast says why, and the card says the preview has expired, with
    # no Retry (no save can succeed any more)
    alert = page.locator("#toast-alert")
    why = f"Could not save “{prompt}”: the provider no longer has the file."
    expect(alert).to_contain_text(why, timeout=SERVER_WAIT_MS)
    expect(card.locator(".expired-note")).to_have_text("Preview expired — it can no longer be saved.")
    expect(status_of(card)).to_have_text("Expired")
    assert _buttons_and_links(card) == ["Delete"]
    view = api.video(video_id)
    assert view["save_state"] == "failed" and view["save_error"]["code"] == "source_gone"
    assert view["preview_expired"] is True
    screenshot("save-found-it-gone", show=card)

    # AND "Save all ready" leaves it out
    page.get_by_role("button", name="Save all ready").click()
    nothing_left = "Save all ready: no video in campaign 42 is waiting to be saved."
    expect(toasts(page).filter(has_text=nothing_left)).to_have_count(1)
