"""Saves in the background, as a user sees them on the library page: queued → saving with a progress bar →
"✓ Saved to Library"; a failure with its reason and a Retry; a retry under way (and no polling while the tab is
hidden); Save all ready; Save selected. (A save that finds the provider's file gone: test_expiry.py.)

Each test is its own user, so the tests share one stack without seeing each other's videos. Expectations wait
for states; nothing measures how long a save took.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Screenshot
from tests.browser.library_page import (
    SERVER_WAIT_S,
    Api,
    card_of,
    emulate_visibility,
    fake_piapi,
    save_line_of,
    saved_mark_of,
    show_videos,
    sign_in,
    status_of,
    task_id_of,
    toasts,
    usage_line,
)
from tests.stack_process import RunningStack

GIB = 1024**3
# A save of 1 GiB (the figure) takes about 35 s through the local stack here, most of it moto putting
# the multipart upload together after the last byte: long enough for several progress reports.
BIG_FILE_BYTES = GIB
SERVER_WAIT_MS = int(SERVER_WAIT_S * 1000)


# The card's progress bar and save line, read in one go: {"percent": aria-valuenow or null, "line": text}.
_PROGRESS_OF = """(prompt) => {
    const card = [...document.querySelectorAll('#videos article')]
        .find((a) => a.querySelector('h3').textContent === prompt);
    const bar = card && card.querySelector('[role=progressbar][aria-valuenow]');
    const line = card && card.querySelector('.save-line');
    return {
        percent: bar ? Number(bar.getAttribute('aria-valuenow')) : null,
        line: line ? line.textContent : null,
    };
}"""


def progress_below_100(page: Page, prompt: str) -> dict[str, Any]:
    """The card's progress once its bar shows a percent under 100 (the copy is under way)."""
    handle = page.wait_for_function(
        f"(prompt) => {{ const p = ({_PROGRESS_OF})(prompt); return p.percent !== null && p.percent < 100 && p; }}",
        arg=prompt,
        timeout=SERVER_WAIT_MS,
    )
    progress: dict[str, Any] = handle.json_value()
    return progress


def progress_beyond(page: Page, prompt: str, percent: int) -> dict[str, Any] | None:
    """The card's progress once its bar shows more than ``percent``; None if the bar went (the save ended)."""
    handle = page.wait_for_function(
        f"([prompt, percent]) => {{ const p = ({_PROGRESS_OF})(prompt);"
        " return p.percent === null ? 'gone' : p.percent > percent && p; }",
        arg=[prompt, percent],
        timeout=SERVER_WAIT_MS,
    )
    progress = handle.json_value()
    return None if progress == "gone" else dict(progress)


def test_a_big_save_shows_its_progress_moving_then_the_mark(
    page: Page, stack: RunningStack, screenshot: Screenshot
) -> None:
    # GIVEN a completed 1 GiB video (the fake PiAPI's synthetic file)
    api = Api(stack, "erin")
    prompt = "a very long timelapse of a city"
    video_id = api.generate(prompt, options={"fake_size_bytes": BIG_FILE_BYTES})
    api.wait_until_generated(video_id)
    sign_in(page, stack, "erin")
    card = card_of(page, prompt)
    expect(status_of(card)).to_have_text("Completed")

    # WHEN the user saves it
    with page.expect_response(lambda r: r.url.endswith("/api/video/save-to-library")) as answer:
        card.get_by_role("button", name="Save to Library").click()

    # THEN the request answers at once (202, queued) and the card shows the save going: a bar with a percent,
    # the size and the time it has taken so far
    assert answer.value.status == 202, answer.value.text()
    assert answer.value.json()["save_state"] == "queued"
    expect(card.get_by_role("progressbar")).to_be_visible()
    first = progress_below_100(page, prompt)
    assert re.fullmatch(r"Saving: \d+% · [\d.]+ (bytes|kB|MB|GB) of 1\.07 GB · \d+:\d\d", first["line"]), first
    screenshot("saving-first", show=card)

    # AND the bar moves as the record's bytes_copied grows
    later = progress_beyond(page, prompt, first["percent"])
    if later is not None:  # None: the save ended between two looks; the mark below says how
        assert later["percent"] > first["percent"]
        screenshot("saving-later", show=card)

    # AND it ends saved: the mark, one toast, the size, the copy in the bucket is the whole file
    expect(saved_mark_of(card)).to_be_visible(timeout=SERVER_WAIT_MS)
    expect(card.get_by_role("progressbar")).to_have_count(0)
    expect(toasts(page).filter(has_text=f"Video saved to library: “{prompt}”.")).to_have_count(1)
    expect(card.locator(".facts")).to_contain_text("Size1.07 GB")
    expect(usage_line(page)).to_contain_text("1 saved video, 1.07 GB")
    assert api.video(video_id)["size_bytes"] == BIG_FILE_BYTES
    screenshot("saved", show=card)


def test_a_failed_save_says_why_and_retry_saves_it(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a completed Hunyuan video (no thumbnail: its card shows the video's first frame)
    sign_in(page, stack, "bob")
    api = Api(stack, "bob")
    prompt = "a lighthouse in a storm"
    video_id = api.generate(prompt)
    api.wait_until_generated(video_id)
    show_videos(page)
    card = card_of(page, prompt)
    expect(status_of(card)).to_have_text("Completed")
    expect(card.locator(".facts")).to_contain_text("ProviderHunyuan")
    expect(card.locator(".cost")).to_have_text("$0.03")
    frame = card.locator("video.first-frame")
    expect(frame).to_have_attribute("src", re.compile(r"\.mp4#t=0\.1$"))
    expect(frame).to_have_attribute("preload", "metadata")
    assert frame.evaluate("(v) => v.muted") is True
    page.wait_for_function("(v) => v.readyState >= 2 && v.videoWidth > 0", arg=frame.element_handle())
    play = card.get_by_role("button", name=f"Play {prompt}")
    expect(play).to_be_visible()
    screenshot("first-frame", show=card)

    # AND the provider will refuse its next download (401: not a passing failure, so the save does not retry)
    task_id = task_id_of(stack, monkeypatch, video_id)
    fake_piapi(stack, "flaky", task_id, {"failures": 1, "status": 401})

    # WHEN the user saves it
    card.get_by_role("button", name="Save to Library").click()

    # THEN the card says why in words, with the provider's answer, and offers a Retry; an error toast says it too
    expect(save_line_of(card)).to_have_text(
        "Not saved: the provider refused to hand over the file.", timeout=SERVER_WAIT_MS
    )
    expect(card.locator(".save-detail")).to_have_text("The provider refused the file (HTTP 401)")
    alert = page.locator("#toast-alert")
    expect(alert).to_contain_text(f"Could not save “{prompt}”: the provider refused to hand over the file.")
    expect(saved_mark_of(card)).to_have_count(0)
    expect(usage_line(page)).to_have_text("Storage: no saved videos in campaign 42 yet.")
    assert api.video(video_id)["save_state"] == "failed"
    screenshot("failed", show=card)

    # AND the error stays until dismissed; after a reload the card still says why, without a new toast
    alert.get_by_role("button", name="Dismiss").click()
    expect(alert.locator(".toast")).to_have_count(0)
    page.reload()
    expect(save_line_of(card)).to_have_text("Not saved: the provider refused to hand over the file.")
    expect(toasts(page)).to_have_count(0)

    # WHEN the user presses Retry (from the keyboard), the provider handing the file over again
    card.get_by_role("button", name="Retry").focus()
    page.keyboard.press("Enter")

    # THEN the save runs again and lands
    expect(saved_mark_of(card)).to_be_visible(timeout=SERVER_WAIT_MS)
    expect(card.get_by_role("button", name="Retry")).to_have_count(0)
    expect(save_line_of(card)).to_have_count(0)
    expect(toasts(page).filter(has_text=f"Video saved to library: “{prompt}”.")).to_have_count(1)
    expect(usage_line(page)).to_contain_text("1 saved video")
    screenshot("saved-after-retry", show=card)


def test_a_retried_save_says_which_attempt_and_is_not_polled_while_the_tab_is_hidden(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a page that notes every API request it makes, with the page's visibility at that moment
    page.add_init_script(
        """(() => {
            window.apiCalls = [];
            const original = window.fetch;
            window.fetch = (input, init) => {
                window.apiCalls.push({ url: String(input), visibility: document.visibilityState });
                return original(input, init);
            };
        })()"""
    )
    # AND a completed Hailuo video whose next download the provider answers with 503
    sign_in(page, stack, "frank")
    api = Api(stack, "frank")
    prompt = "a hummingbird at a feeder"
    video_id = api.generate(prompt, model="hailuo", task_type="video_generation")
    api.wait_until_generated(video_id)
    fake_piapi(stack, "flaky", task_id_of(stack, monkeypatch, video_id), {"failures": 1})
    show_videos(page)
    card = card_of(page, prompt)

    # WHEN the user saves it
    card.get_by_role("button", name="Save to Library").click()

    # THEN the card says a retry is coming, which attempt it will be and why the last one failed
    expect(save_line_of(card)).to_have_text(
        "Retrying, attempt 2 of 5: the provider's file could not be downloaded just now.", timeout=SERVER_WAIT_MS
    )
    expect(card.locator(".save-detail")).to_have_text("The source answered HTTP 503")
    expect(card.get_by_role("button", name="Retry")).to_have_count(0)  # it retries by itself
    expect(toasts(page).filter(has_text="Could not save")).to_have_count(0)  # not a failure (yet)
    screenshot("retrying", show=card)

    # WHEN the tab is hidden while the worker waits out its backoff (tens of seconds) and then saves the video
    emulate_visibility(page, hidden=True)
    asked_before = len(page.evaluate("window.apiCalls"))
    api.wait_for(video_id, "save_state", "saved")

    # THEN the page asked nothing while hidden, so it still shows the retry
    calls = page.evaluate("window.apiCalls")
    assert [call for call in calls if call["visibility"] == "hidden"] == []
    assert len(calls) == asked_before
    expect(save_line_of(card)).to_have_text(re.compile("^Retrying, attempt 2 of 5"))
    screenshot("hidden", show=card)

    # WHEN the tab is shown again
    emulate_visibility(page, hidden=False)

    # THEN it catches up at once: the mark and the toast, the error gone
    expect(saved_mark_of(card)).to_be_visible()
    expect(save_line_of(card)).to_have_count(0)
    expect(toasts(page).filter(has_text=f"Video saved to library: “{prompt}”.")).to_have_count(1)
    asked_since = page.evaluate("window.apiCalls")[asked_before:]
    assert any(call["url"].endswith(f"/api/video/{video_id}") for call in asked_since)
    view = api.video(video_id)
    assert view["save_state"] == "saved" and view["save_error"] is None
    screenshot("shown", show=card)


def test_save_all_ready_saves_the_campaign_with_one_summary_toast(
    page: Page, stack: RunningStack, screenshot: Screenshot
) -> None:
    # GIVEN three completed videos, one already saved, and one whose generation failed
    api = Api(stack, "gina")
    ready = ["a red kite over hills", "waves on a pebble beach", "a snail on a leaf"]
    ready_ids = [api.generate(prompt) for prompt in ready]
    saved_id = api.generate("an old saved video")
    failed_id = api.generate("please fail here")
    api.wait_until_generated(*ready_ids, saved_id, failed_id)
    assert api.client.post("/api/video/save-to-library", json={"video_id": saved_id}).status_code == 202
    api.wait_for(saved_id, "save_state", "saved")
    sign_in(page, stack, "gina")
    for prompt in ready:
        expect(card_of(page, prompt).get_by_role("button", name="Save to Library")).to_be_visible()

    # WHEN the user asks to save all ready videos of the campaign
    with page.expect_response(lambda r: r.url.endswith("/api/video/save-to-library")) as answer:
        page.get_by_role("button", name="Save all ready").click()

    # THEN one request (the bulk route) queues the three, and one toast says so
    assert answer.value.status == 202, answer.value.text()
    assert answer.value.json()["queued"] == 3
    summary = toasts(page).filter(has_text="Save all ready:")
    expect(summary).to_have_count(1)
    screenshot("requested", show=card_of(page, ready[0]))

    # AND every ready card ends saved; the summary toast says so in the end, still one toast
    for prompt in ready:
        expect(saved_mark_of(card_of(page, prompt))).to_be_visible(timeout=SERVER_WAIT_MS)
    expect(summary).to_have_text(re.compile(r"Save all ready: 3 videos saved to library\."))
    expect(toasts(page)).to_have_count(1)
    expect(usage_line(page)).to_contain_text("4 saved videos")
    expect(card_of(page, "please fail here").get_by_role("button")).to_have_text(["Delete"])
    for video_id in ready_ids:
        assert api.video(video_id)["save_state"] == "saved"
    screenshot("saved", show=card_of(page, ready[0]))

    # WHEN it is asked again, nothing is left to save, and it says that
    page.get_by_role("button", name="Save all ready").click()
    nothing_left = "Save all ready: no video in campaign 42 is waiting to be saved."
    expect(toasts(page).filter(has_text=nothing_left)).to_have_count(1)


def test_save_selected_saves_exactly_the_selected_videos_from_the_keyboard(
    page: Page, stack: RunningStack, screenshot: Screenshot
) -> None:
    # GIVEN three completed videos and a failed one
    api = Api(stack, "hal")
    prompts = ["a fox in the snow", "a tram at night", "a field of sunflowers"]
    ids = [api.generate(prompt) for prompt in prompts]
    failed_id = api.generate("please fail again")
    api.wait_until_generated(*ids, failed_id)
    sign_in(page, stack, "hal")
    save_selected = page.get_by_role("button", name="Save selected")
    expect(save_selected).to_be_disabled()

    # WHEN the user ticks the first and the third, and the failed one, from the keyboard
    for prompt in (prompts[0], prompts[2], "please fail again"):
        box = page.get_by_role("checkbox", name=f"Select {prompt}")
        box.focus()
        page.keyboard.press("Space")
        expect(box).to_be_checked()
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    expect(page.get_by_label("Select all")).to_have_js_property("indeterminate", True)
    screenshot("selected", show=card_of(page, prompts[0]))
    save_selected.focus()
    with page.expect_response(lambda r: r.url.endswith("/api/video/save-to-library")) as answer:
        page.keyboard.press("Enter")

    # THEN one bulk request names exactly those; the summary says two started and why the third was refused
    assert sorted(answer.value.request.post_data_json["video_ids"]) == sorted([ids[0], ids[2], failed_id])
    summary = toasts(page).filter(has_text="Save selected:")
    # (the saves are small: the summary may already be the final one)
    expect(summary).to_have_text(
        re.compile(
            r"Save selected: (2 saves started|2 videos saved to library), "
            r"1 not saved: only completed videos can be saved\."
        )
    )
    expect(page.locator("#selection-count")).to_have_text("None selected")

    # AND those two end saved, the other stays unsaved; still one summary toast
    for prompt in (prompts[0], prompts[2]):
        expect(saved_mark_of(card_of(page, prompt))).to_be_visible(timeout=SERVER_WAIT_MS)
    expect(summary).to_have_text(
        re.compile(r"Save selected: 2 videos saved to library, 1 not saved: only completed videos can be saved\.")
    )
    expect(card_of(page, prompts[1]).get_by_role("button", name="Save to Library")).to_be_visible()
    assert api.video(ids[1])["save_state"] == "none"
    expect(toasts(page)).to_have_count(1)
    screenshot("saved", show=card_of(page, prompts[0]))
