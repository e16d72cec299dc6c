"""Deleting from the library page: one card (the page asks first), or the selected ones with one summary toast.
What is deleted is gone from the page, the API and the bucket, and the storage line counts it out; a video whose
save is under way is kept, and the page says why.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Screenshot
from tests.browser.library_page import (
    Api,
    bucket_keys,
    card_of,
    queue_save_for_no_worker,
    saved_mark_of,
    sign_in,
    toasts,
    usage_line,
)
from tests.stack_process import RunningStack


def _save(api: Api, *video_ids: str) -> None:
    for video_id in video_ids:
        assert api.client.post("/api/video/save-to-library", json={"video_id": video_id}).status_code == 202
    for video_id in video_ids:
        api.wait_for(video_id, "save_state", "saved")


def test_delete_one_video_asks_first_and_removes_its_bytes_from_the_bucket(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a saved Luma video (its file and its thumbnail in the bucket), a preview, and a video whose save is queued
    api = Api(stack, "lou")
    saved_prompt, preview_prompt, busy_prompt = "a lighthouse at dawn", "a cat asleep on a sofa", "a tram in the snow"
    saved_id = api.generate(saved_prompt, model="luma", task_type="video_generation")
    preview_id = api.generate(preview_prompt)
    busy_id = api.generate(busy_prompt)
    api.wait_until_generated(saved_id, preview_id, busy_id)
    _save(api, saved_id)
    queue_save_for_no_worker(stack, monkeypatch, busy_id, "lou")
    assert bucket_keys(stack, saved_id) == [
        f"campaigns/42/thumbnails/{saved_id}.jpg",
        f"campaigns/42/videos/{saved_id}.mp4",
    ]
    sign_in(page, stack, "lou")
    card = card_of(page, saved_prompt)
    expect(saved_mark_of(card)).to_be_visible()
    expect(usage_line(page)).to_contain_text("Storage: 1 saved video")

    # WHEN the user presses Delete on the saved video
    card.get_by_role("button", name="Delete").click()

    # THEN the page asks first, saying what goes
    dialog = page.get_by_role("dialog", name="Delete this video?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(
        re.compile(r"Its saved copy \([\d.]+ kB\) is removed from the library's storage\. This cannot be undone\.")
    )
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice is the default
    screenshot("asked", show=card)

    # WHEN the user cancels
    dialog.get_by_role("button", name="Cancel").click()

    # THEN nothing changes
    expect(dialog).to_be_hidden()
    expect(card).to_be_visible()
    assert api.video(saved_id)["saved_to_r2"] is True
    assert len(bucket_keys(stack, saved_id)) == 2

    # WHEN the user deletes it after all
    card.get_by_role("button", name="Delete").click()
    with page.expect_response(lambda r: r.request.method == "DELETE") as answer:
        dialog.get_by_role("button", name="Delete").click()

    # THEN the card goes, one toast says so, the storage line counts it out; the video and its thumbnail are gone
    # from the bucket and the API
    assert answer.value.status == 200, answer.value.text()
    expect(card).to_have_count(0)
    expect(toasts(page).filter(has_text=f"Deleted “{saved_prompt}”.")).to_have_count(1)
    expect(usage_line(page)).to_have_text("Storage: no saved videos in campaign 42 yet.")
    expect(page.locator("#saved-count")).to_have_text("0")
    expect(page.locator("#list-status")).to_have_text("2 videos in campaign 42.")
    assert bucket_keys(stack, saved_id) == []
    assert api.client.get(f"/api/video/{saved_id}").status_code == 404
    # AND the keyboard keeps its place: the neighbouring card's title has the focus (it was the last card)
    expect(card_of(page, preview_prompt).locator("h3")).to_be_focused()
    screenshot("deleted")

    # WHEN the user deletes the video whose save is queued
    busy = card_of(page, busy_prompt)
    expect(busy.locator(".save-line")).to_have_text("Queued for saving: the copy starts in a moment.")
    busy.get_by_role("button", name="Delete").click()
    with page.expect_response(lambda r: r.request.method == "DELETE") as answer:
        dialog.get_by_role("button", name="Delete").click()

    # THEN the API refuses (409) and the page says why in words; the card stays, its save going on
    assert answer.value.status == 409 and answer.value.json()["error"]["code"] == "save_in_progress"
    expect(page.locator("#toast-alert")).to_contain_text(
        f"Could not delete “{busy_prompt}”: a save is under way (delete it once the save has finished or failed)."
    )
    expect(busy).to_be_visible()
    expect(busy.get_by_role("button", name="Delete")).to_be_enabled()
    assert api.video(busy_id)["save_state"] == "queued"
    screenshot("refused", show=busy)

    # WHEN the preview is deleted
    card_of(page, preview_prompt).get_by_role("button", name="Delete").click()
    expect(dialog).to_contain_text("It is removed from your library. This cannot be undone.")
    dialog.get_by_role("button", name="Delete").click()

    # THEN it is gone, and a reload does not bring it back
    expect(card_of(page, preview_prompt)).to_have_count(0)
    page.reload()
    expect(card_of(page, busy_prompt)).to_be_visible()
    expect(card_of(page, preview_prompt)).to_have_count(0)
    assert api.client.get(f"/api/video/{preview_id}").status_code == 404


def test_delete_selected_deletes_them_with_one_summary_toast(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three saved videos, a preview, and a video whose save is queued
    api = Api(stack, "mia")
    saved = ["a fox in the snow", "a tram at night", "a field of sunflowers"]
    saved_ids = [api.generate(prompt, model="luma", task_type="video_generation") for prompt in saved]
    preview_id = api.generate("a windmill turning")
    busy_id = api.generate("a glass of water")
    api.wait_until_generated(*saved_ids, preview_id, busy_id)
    _save(api, *saved_ids)
    queue_save_for_no_worker(stack, monkeypatch, busy_id, "mia")
    sign_in(page, stack, "mia")
    expect(usage_line(page)).to_contain_text("Storage: 3 saved videos")

    # WHEN the user ticks two saved videos, the preview and the busy one, and presses Delete selected
    for prompt in (saved[0], saved[2], "a windmill turning", "a glass of water"):
        page.get_by_role("checkbox", name=f"Select {prompt}").check()
    expect(page.locator("#selection-count")).to_have_text("4 selected")
    page.get_by_role("button", name="Delete selected").click()

    # THEN the page asks first, saying what goes
    dialog = page.get_by_role("dialog", name="Delete 4 videos?")
    expect(dialog).to_contain_text(
        re.compile(
            r"2 saved copies \([\d.]+ kB\) are removed from the library's storage\. "
            r"2 videos not saved are removed from your library\. This cannot be undone\."
        )
    )
    screenshot("asked")
    with page.expect_response(lambda r: r.url.endswith("/api/video/delete")) as answer:
        dialog.get_by_role("button", name="Delete 4").click()

    # THEN one request deletes them; one toast sums it up, with why one was kept
    assert answer.value.status == 200
    assert sorted(answer.value.request.post_data_json["video_ids"]) == sorted(
        [saved_ids[0], saved_ids[2], preview_id, busy_id]
    )
    summary = toasts(page).filter(has_text="Delete selected:")
    expect(summary.locator(".toast-text")).to_have_text(
        "Delete selected: 3 videos deleted, 1 not deleted: "
        "a save is under way (delete it once the save has finished or failed)."
    )
    expect(toasts(page)).to_have_count(1)
    for prompt in (saved[0], saved[2], "a windmill turning"):
        expect(card_of(page, prompt)).to_have_count(0)
    expect(card_of(page, "a glass of water")).to_be_visible()
    expect(card_of(page, saved[1])).to_be_visible()
    expect(page.locator("#selection-count")).to_have_text("None selected")
    expect(usage_line(page)).to_contain_text("Storage: 1 saved video,")

    # AND the bytes of the deleted ones are gone from the bucket; the one not selected keeps its own
    assert bucket_keys(stack, saved_ids[0]) == [] and bucket_keys(stack, saved_ids[2]) == []
    assert len(bucket_keys(stack, saved_ids[1])) == 2
    for video_id in (saved_ids[0], saved_ids[2], preview_id):
        assert api.client.get(f"/api/video/{video_id}").status_code == 404
    assert api.video(busy_id)["save_state"] == "queued"
    screenshot("deleted")
