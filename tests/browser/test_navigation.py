"""Finding videos again on the library page: filters (All / Saved / Not saved / Failed / Expiring soon), sort
(Newest / Oldest / Largest), a search in the prompts, the campaign picker (and a new campaign typed in), the
Saved count; and short pages of a filtered listing followed until the page is full.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.conftest import Screenshot
from tests.browser.library_page import Api, add_plain_videos, generate, sign_in, usage_line
from tests.stack_process import RunningStack

LISTING = "/api/video/library"


def _titles(page: Page) -> list[str]:
    return [title.strip() for title in page.locator("#videos h3").all_text_contents()]


def _listing_query(response: Response) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(response.url).query).items()}


def test_filters_sort_search_and_the_campaign_picker(page: Page, stack: RunningStack, screenshot: Screenshot) -> None:
    # GIVEN in campaign 42 three saved videos of different sizes, a preview and a failed generation; and a preview
    # in campaign "autumn"
    api = Api(stack, "lena")
    sizes = {"a small wooden boat": 200_000, "a big harbour crane": 600_000, "a middle-sized ferry": 400_000}
    saved_ids = [
        api.generate(prompt, model="luma", task_type="video_generation", options={"fake_size_bytes": size})
        for prompt, size in sizes.items()
    ]
    preview_id = api.generate("an unsaved harbour at dusk")
    failed_id = api.generate("please fail this harbour")
    autumn_id = api.generate("autumn leaves falling", campaign_id="autumn")
    api.wait_until_generated(*saved_ids, preview_id, failed_id, autumn_id)
    for video_id in saved_ids:
        assert api.client.post("/api/video/save-to-library", json={"video_id": video_id}).status_code == 202
    for video_id in saved_ids:
        api.wait_for(video_id, "save_state", "saved")
    newest_first = ["please fail this harbour", "an unsaved harbour at dusk", *reversed(sizes)]

    # WHEN the user opens the library (the page's listing requests noted)
    listings: list[Response] = []
    page.on("response", lambda response: listings.append(response) if LISTING in response.url else None)
    sign_in(page, stack, "lena")

    # THEN the picker lists the user's campaigns with their saved counts, and a way to type a new one
    picker = page.get_by_label("Campaign", exact=True)
    expect(picker.locator("option")).to_have_text(["42 · 3 saved", "autumn", "New campaign…"])
    expect(picker).to_have_value("42")
    expect(page.get_by_role("radio", name=re.compile("^Saved"))).to_have_accessible_name("Saved 3")
    expect(page.locator("#videos h3")).to_have_text(newest_first)
    screenshot("all")

    # WHEN the user shows the saved videos only
    page.get_by_role("radio", name=re.compile("^Saved")).check()

    # THEN the three saved ones show, newest first
    expect(page.locator("#videos h3")).to_have_text(list(reversed(sizes)))
    expect(page.locator("#list-status")).to_have_text("3 saved videos in campaign 42.")

    # WHEN they are sorted largest first
    with page.expect_response(lambda r: LISTING in r.url and "sort=largest" in r.url) as answer:
        page.get_by_label("Sort").select_option("largest")
    assert _listing_query(answer.value) == {"campaign_id": "42", "show": "saved", "sort": "largest", "limit": "24"}

    # THEN the biggest file comes first
    largest_first = ["a big harbour crane", "a middle-sized ferry", "a small wooden boat"]
    expect(page.locator("#videos h3")).to_have_text(largest_first)
    expect(page.locator("#list-status")).to_have_text("3 saved videos in campaign 42, largest first.")
    screenshot("saved-largest-first")

    # WHEN the user switches to the videos not saved (which have no size yet)
    page.get_by_role("radio", name="Not saved").check()

    # THEN the sort falls back to newest, and Largest cannot be picked while this filter is on
    expect(page.get_by_label("Sort")).to_have_value("newest")
    expect(page.get_by_label("Sort").locator('option[value="largest"]')).to_be_disabled()
    expect(page.locator("#videos h3")).to_have_text(["please fail this harbour", "an unsaved harbour at dusk"])
    expect(page.locator("#list-status")).to_have_text("2 unsaved videos in campaign 42.")

    # WHEN the user shows the failed ones
    page.get_by_role("radio", name="Failed").check()
    expect(page.locator("#videos h3")).to_have_text(["please fail this harbour"])

    # WHEN the user shows them all, oldest first
    page.get_by_role("radio", name="All").check()
    page.get_by_label("Sort").select_option("oldest")
    expect(page.locator("#videos h3")).to_have_text(list(reversed(newest_first)))
    expect(page.locator("#list-status")).to_have_text("5 videos in campaign 42, oldest first.")

    # WHEN the user searches the prompts (in other letter case), newest first again
    page.get_by_label("Sort").select_option("newest")
    page.get_by_label("Search").press_sequentially("HARBOUR")

    # THEN the listing is asked with the words once the typing pauses, and only what matches shows
    expect(page.locator("#videos h3")).to_have_text(
        ["please fail this harbour", "an unsaved harbour at dusk", "a big harbour crane"]
    )
    expect(page.locator("#list-status")).to_have_text("3 videos matching “HARBOUR” in campaign 42.")
    assert _listing_query(listings[-1]) == {"campaign_id": "42", "q": "HARBOUR", "limit": "24"}
    screenshot("search")

    # WHEN nothing matches
    page.get_by_label("Search").fill("submarine")
    expect(page.locator("#list-status")).to_have_text("No videos matching “submarine” in campaign 42.")
    expect(page.locator("#videos h3")).to_have_count(0)
    page.get_by_label("Search").fill("")
    expect(page.locator("#videos h3")).to_have_text(newest_first)

    # WHEN the user picks campaign "autumn"
    picker.select_option("autumn")

    # THEN its video shows, and the storage line speaks of it
    expect(page.locator("#videos h3")).to_have_text(["autumn leaves falling"])
    expect(usage_line(page)).to_have_text("Storage: no saved videos in campaign autumn yet.")
    expect(page.get_by_role("radio", name=re.compile("^Saved"))).to_have_accessible_name("Saved 0")
    screenshot("campaign-autumn")

    # WHEN the user types a new campaign and generates into it
    picker.select_option(label="New campaign…")
    page.get_by_label("New campaign id").fill("winter-2025")
    page.get_by_role("button", name="Use", exact=True).click()
    expect(page.locator("#list-status")).to_have_text("No videos in campaign winter-2025 yet: generate one above.")
    expect(page.get_by_label("Prompt")).to_be_focused()
    card = generate(page, "snow on a quiet road")

    # THEN the video is in that campaign, and the picker lists the campaign from then on
    expect(card).to_be_visible()
    expect(picker.locator("option")).to_have_text(["42 · 3 saved", "autumn", "winter-2025", "New campaign…"])
    expect(picker).to_have_value("winter-2025")
    in_winter = api.client.get("/api/video/library", params={"campaign_id": "winter-2025"}).json()["items"]
    assert [video["prompt"] for video in in_winter] == ["snow on a quiet road"]
    screenshot("new-campaign", show=card)

    # AND a video typed in with a filter on switches the list back to all videos, where it shows first
    picker.select_option("42")
    page.get_by_role("radio", name=re.compile("^Saved")).check()
    expect(page.locator("#videos h3")).to_have_count(3)
    card = generate(page, "a second look at the crane")
    expect(page.get_by_role("radio", name="All")).to_be_checked()
    expect(page.locator("#videos h3").first).to_have_text("a second look at the crane")


def test_short_pages_are_followed_until_the_page_is_full(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a library of 1,100 videos newer than the only two that mention herons: a search reads at most 1,000
    # videos a request, so the first answer holds none of them and a next_cursor
    api = Api(stack, "otto")
    herons = ["a heron taking off", "two herons fishing"]
    heron_ids = [api.generate(prompt) for prompt in herons]
    api.wait_until_generated(*heron_ids)
    add_plain_videos(stack, monkeypatch, "otto", [f"filler clip {n}" for n in range(1100)])
    sign_in(page, stack, "otto")
    expect(page.locator("#list-status")).to_have_text("24 videos in campaign 42 (more below).")
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response) if "q=heron" in response.url else None)

    # WHEN the user searches for herons
    page.get_by_label("Search").fill("heron")
    page.get_by_label("Search").press("Enter")

    # THEN the page asks again after the empty page, and shows both, with nothing more to load
    expect(page.locator("#videos h3")).to_have_text(list(reversed(herons)))
    expect(page.locator("#list-status")).to_have_text("2 videos matching “heron” in campaign 42.")
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    pages = [answer.json() for answer in answers]
    assert len(pages) == 2, [(len(p["items"]), p["next_cursor"]) for p in pages]
    assert pages[0]["items"] == [] and pages[0]["next_cursor"]
    assert _listing_query(answers[1])["cursor"] == pages[0]["next_cursor"]
    assert [item["prompt"] for item in pages[1]["items"]] == list(reversed(herons))
    assert pages[1]["next_cursor"] is None
    screenshot("found-after-an-empty-page")
